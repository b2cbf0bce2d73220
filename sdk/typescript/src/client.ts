import createFetchClient from "openapi-fetch";
import type { Client } from "openapi-fetch";

import { errorOf } from "./errors.js";
import { answer, Keys } from "./keys.js";
import { type FetchLike, idempotencyHeader, newIdempotencyKey, type RetryOptions, sender } from "./retry.js";
import type { paths } from "./schema.js";
import type { CallOptions, Me, Scope } from "./types.js";

/** What a client is made of. */
export interface IndigoOptions extends RetryOptions {
  /** The host: scheme and host, and a path prefix if Indigo is mounted below one (https://example.com/indigo). */
  baseUrl: string;
  /** The API key every call authenticates with. */
  key: string;
  /** Sends the requests instead of globalThis.fetch (a proxy's, a test's recorder). */
  fetch?: FetchLike;
}

/** What request takes. */
export interface RequestOptions extends CallOptions {
  /**
   * Sent as JSON, unless it is a string, Blob, ArrayBuffer, typed array,
   * FormData or URLSearchParams, which are sent as they are.
   */
  body?: unknown;
  /** Query parameters; undefined ones are left out. */
  query?: Record<string, string | number | boolean | undefined>;
  headers?: Record<string, string>;
}

function rawBody(b: unknown): b is BodyInit {
  return (
    typeof b === "string" ||
    b instanceof Blob ||
    b instanceof ArrayBuffer ||
    ArrayBuffer.isView(b) ||
    b instanceof FormData ||
    b instanceof URLSearchParams
  );
}

/**
 * A client of one Indigo host with one API key. It needs only fetch, so
 * it runs in Node.js 20+ and in browsers (from the host's origin: CORS is
 * not built into Indigo).
 *
 *     const indigo = new Indigo({ baseUrl: "https://indigo.example.com", key: apiKey });
 *     const { key, raw_key } = await indigo.keys.create({ name: "reports", scopes: ["projects:read"] });
 *     for await (const k of indigo.keys.list()) console.log(k.name);
 *
 * Errors are IndigoError. A 429, and a 503 of a call that is safe to
 * repeat, is retried after its Retry-After (RetryOptions).
 */
export class Indigo {
  /** The org's keys (scopes api-keys:read, api-keys:write, api-keys:verify). */
  readonly keys: Keys;
  /**
   * The generated client (openapi-fetch) of every operation of the
   * document, the operators' views too, sending through this client's key
   * and retries. It answers {data, error, response} and never throws for
   * an answer of Indigo.
   */
  readonly raw: Client<paths>;
  readonly #base: string;
  readonly #send: FetchLike;

  constructor(opts: IndigoOptions) {
    let u: URL;
    try {
      u = new URL(opts.baseUrl);
    } catch {
      throw new TypeError(`indigo: base URL ${JSON.stringify(opts.baseUrl)}: want http(s)://host[/prefix]`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") {
      throw new TypeError(`indigo: base URL ${JSON.stringify(opts.baseUrl)}: want http(s)://host[/prefix]`);
    }
    if (!opts.key) throw new TypeError("indigo: no API key");
    this.#base = u.origin + u.pathname.replace(/\/+$/, "");
    this.#send = sender(opts.key, opts.fetch, opts);
    this.raw = createFetchClient<paths>({ baseUrl: this.#base, fetch: this.#send });
    this.keys = new Keys(this.raw);
  }

  /** The key the client calls with (any valid key; metered, so every attempt carries one Idempotency-Key). */
  me(opts: CallOptions = {}): Promise<Me> {
    return answer(
      this.raw.GET("/api/v2/me", { headers: { [idempotencyHeader]: newIdempotencyKey() }, signal: opts.signal }),
    );
  }

  /** Every scope the host knows (api-keys:read). */
  async scopes(opts: CallOptions = {}): Promise<Scope[]> {
    const r = await answer(this.raw.GET("/api/v2/scopes", { signal: opts.signal }));
    return r.scopes;
  }

  /**
   * Calls a route the generated client does not know: a module's
   * (request("POST", "/projects", { body: { name: "p" } })) or any other.
   * A path that does not start with /api/ is below /api/v2. The answer is
   * its JSON (undefined when empty; the text when it is not JSON). Every
   * call carries an Idempotency-Key (one of headers, else a new one), so
   * that a retry is charged once and a module's kept answer is replayed.
   */
  async request<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    if (!path.startsWith("/api/")) path = "/api/v2/" + path.replace(/^\/+/, "");
    const url = new URL(this.#base + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v !== undefined) url.searchParams.append(k, String(v));
    }
    const headers = new Headers(opts.headers);
    if (!headers.has(idempotencyHeader)) headers.set(idempotencyHeader, newIdempotencyKey());
    let body: BodyInit | undefined;
    if (opts.body !== undefined) {
      body = rawBody(opts.body) ? opts.body : JSON.stringify(opts.body);
      if (typeof body === "string" && !headers.has("Content-Type")) headers.set("Content-Type", "application/json");
    }
    const res = await this.#send(new Request(url, { method: method.toUpperCase(), headers, body, signal: opts.signal }));
    if (!res.ok) throw await errorOf(res);
    const text = await res.text();
    if (text === "") return undefined as T;
    if (!/\bjson\b/i.test(res.headers.get("Content-Type") ?? "")) return text as T;
    return JSON.parse(text) as T;
  }
}

/** new Indigo(opts). */
export function createClient(opts: IndigoOptions): Indigo {
  return new Indigo(opts);
}
