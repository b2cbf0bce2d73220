import { retryAfterMs } from "./retry.js";

/**
 * An answer of Indigo that is not a success: the HTTP status, the stable
 * code and the message of the body {"error": {"code", "message"}}, and the
 * request id (X-Request-Id) to quote when asking about it. Every call of
 * the client rejects with one for such an answer; a call that got no
 * answer (network, abort) rejects with fetch's own error.
 */
export class IndigoError extends Error {
  override readonly name = "IndigoError";
  /** The HTTP status, e.g. 401. */
  readonly status: number;
  /** e.g. unauthorized, insufficient_scope, rate_limited, not_found; "" when the body was not Indigo's. */
  readonly code: string;
  /** X-Request-Id of the answer, "" when it had none. */
  readonly requestId: string;
  /** The wait the answer asked for (Retry-After on a 429 or 503), in ms; 0 when none. */
  readonly retryAfterMs: number;

  constructor(status: number, code: string, message: string, requestId = "", retryAfterMs = 0) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.retryAfterMs = retryAfterMs;
  }

  /** Everything in one line: "IndigoError: 404 not_found: no such key (request 01J…)". */
  override toString(): string {
    let s = `${this.name}: ${this.status}`;
    if (this.code) s += ` ${this.code}`;
    if (this.message) s += `: ${this.message}`;
    if (this.requestId) s += ` (request ${this.requestId})`;
    return s;
  }
}

/**
 * Reads an error answer whose body has been read already (as parsed JSON
 * when it was JSON, else its text). A body that is not Indigo's error shape
 * (a proxy's page, say) keeps its first line as the message.
 */
export function errorFrom(res: Response, body: unknown): IndigoError {
  const requestId = res.headers.get("X-Request-Id") ?? "";
  const wait = retryAfterMs(res.headers) ?? 0;
  const e = (body as { error?: { code?: unknown; message?: unknown } } | null | undefined)?.error;
  if (e && typeof e.code === "string" && e.code !== "") {
    return new IndigoError(res.status, e.code, typeof e.message === "string" ? e.message : "", requestId, wait);
  }
  let line = typeof body === "string" ? (body.trim().split("\n", 1)[0] ?? "") : "";
  if (line.length > 200) line = line.slice(0, 200);
  return new IndigoError(res.status, "", line || res.statusText || `HTTP ${res.status}`, requestId, wait);
}

/** Reads the body of an error answer: JSON when it parses, else the text. */
export async function errorOf(res: Response): Promise<IndigoError> {
  const text = await res.text().catch(() => "");
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: the text is the message
  }
  return errorFrom(res, body);
}
