// How a call is sent: the key on every request, and 429 and 503 answers
// repeated after their Retry-After. The generated calls (through
// openapi-fetch) and request() share it.

/** Sends one request, as globalThis.fetch does. */
export type FetchLike = (input: Request) => Promise<Response>;

/**
 * Bounds how a call is repeated after a 429 (rate limited) or a 503
 * (unavailable). A 429 is always safe to repeat: Indigo refuses it before
 * anything runs. A 503 is repeated only for GET, HEAD, PUT, DELETE and
 * OPTIONS, and for calls sent with an Idempotency-Key (the metered ones:
 * me, keys.verify and request), so that a retry never creates a second key.
 */
export interface RetryOptions {
  /** How many times a call is repeated at most (default 2; 0 turns retries off). */
  retries?: number;
  /**
   * The longest wait before a retry, in ms (default 30,000). An answer whose
   * Retry-After asks for more is returned as it is.
   */
  maxRetryWaitMs?: number;
  /** The first wait when the answer names none, in ms (default 250); it doubles at each retry, with jitter. */
  retryBackoffMs?: number;
}

/** Makes a retried call count once: Indigo charges a metered call by this key and replays a module's kept answer. */
export const idempotencyHeader = "Idempotency-Key";

/** A fresh Idempotency-Key, from the Web Crypto API (Node.js 20 and browsers, secure context or not). */
export function newIdempotencyKey(): string {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  let s = "ts-";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/**
 * Reads Retry-After (seconds, or an HTTP date) in ms; undefined when the
 * answer has none or it cannot be read.
 */
export function retryAfterMs(h: Headers, now: () => number = Date.now): number | undefined {
  const v = h.get("Retry-After")?.trim();
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Math.min(Number(v), 2 ** 31) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(at - now(), 0);
}

function idempotent(req: Request): boolean {
  switch (req.method) {
    case "GET":
    case "HEAD":
    case "PUT":
    case "DELETE":
    case "OPTIONS":
      return true;
  }
  return req.headers.has(idempotencyHeader);
}

/** Waits ms, or rejects with the signal's reason once it is aborted. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const done = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", done);
      resolve();
    }, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** The fetch every call of a client goes through. */
export function sender(key: string, fetchImpl: FetchLike | undefined, o: RetryOptions): FetchLike {
  const attempts = 1 + Math.max(0, Math.floor(o.retries ?? 2));
  const maxWait = o.maxRetryWaitMs ?? 30_000;
  const backoff = o.retryBackoffMs ?? 250;
  // Looked up at each call and called unbound: browsers refuse a fetch
  // called on another object ("Illegal invocation").
  const send: FetchLike = fetchImpl ?? ((r) => globalThis.fetch(r));

  // wait says whether the answer to attempt is repeated, and after how long.
  const wait = (req: Request, res: Response, attempt: number): number | undefined => {
    if (
      (res.status !== 429 && res.status !== 503) ||
      attempt >= attempts ||
      (res.status === 503 && !idempotent(req)) ||
      // A replayed answer is the one Indigo kept: it would be again.
      res.headers.get("Idempotent-Replayed") === "true"
    ) {
      return undefined;
    }
    let ms = retryAfterMs(res.headers);
    if (ms === undefined) {
      const base = backoff * 2 ** (attempt - 1);
      ms = base / 2 + Math.random() * (base / 2);
    }
    return ms > maxWait ? undefined : ms;
  };

  return async (req) => {
    req.headers.set("Authorization", `Bearer ${key}`);
    if (!req.headers.has("Accept")) req.headers.set("Accept", "application/json");
    for (let attempt = 1; ; attempt++) {
      // Each attempt sends a copy, so that the body can be sent again.
      const res = await send(attempt < attempts ? req.clone() : req);
      const ms = wait(req, res, attempt);
      if (ms === undefined) return res;
      // Not awaited: cancelling a branch of a tee'd body (a response a
      // recording fetch cloned) settles only once the other branch is done.
      void res.body?.cancel().catch(() => {});
      await sleep(ms, req.signal);
    }
  };
}
