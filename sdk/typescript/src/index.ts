/**
 * The TypeScript client of Indigo's API. Its calls are those of the OpenAPI
 * document a host serves (api/openapi.json), generated into schema.ts by
 * openapi-typescript and sent by openapi-fetch; this layer adds what a
 * program expects on top: one client with the key, errors as IndigoError,
 * keys.list as an async iterator over every page, retries of 429 and 503
 * answers that honour Retry-After, an Idempotency-Key on metered calls, and
 * request() for module routes. It needs only fetch: Node.js 20+ and
 * browsers.
 *
 * @module
 */
export { createClient, Indigo, type IndigoOptions, type RequestOptions } from "./client.js";
export { IndigoError } from "./errors.js";
export { Keys, type ListOptions } from "./keys.js";
export type { FetchLike, RetryOptions } from "./retry.js";
export type { components, operations, paths } from "./schema.js";
export type * from "./types.js";
