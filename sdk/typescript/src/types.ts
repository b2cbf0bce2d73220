// The client's types are the API's own, as generated from api/openapi.json
// into schema.ts: what the README and the OpenAPI document say of a field
// holds here, snake_case names included.
import type { components } from "./schema.js";

type Schemas = components["schemas"];

/** An API key as Indigo shows it: never the plaintext, which only create and roll return. scopes null is a superkey. */
export type Key = Schemas["Key"];
/** active, expiring, expired or revoked. */
export type KeyStatus = Key["status"];
/** A new key: only name is required. scopes null makes a superkey; left out or [] grants none (the key can call me() and nothing else). */
export type CreateKey = Schemas["CreateKeyRequest"];
/** A new key with its plaintext (raw_key), shown this once; after roll, previous is the rolled key. */
export type CreatedKey = Schemas["CreateKeyResponse"];
/** Changes to a key: a field left out stays as it is, null removes it (no limit, no quota, no expiry). */
export type KeyUpdate = Schemas["UpdateKeyRequest"];
/** How long the rolled key keeps working; left out: the host's [api] roll_grace, 0: it expires now. */
export type RollOptions = Schemas["RollRequest"];
/** A key's calls, as the request log counts them. */
export type KeyStats = Schemas["KeyStats"];
/** Indigo's answer about a key: an invalid key is a Verification with valid false, not an error. */
export type Verification = Schemas["VerifyResponse"];
/** valid, not_found, disabled, expired, revoked, rate_limited, quota_exceeded or insufficient_scope. */
export type VerificationCode = Verification["code"];
/** The calling key, as GET /api/v2/me answers. */
export type Me = Schemas["Me"];
/** A permission a key may hold, e.g. projects:read of the module projects. */
export type Scope = Schemas["Scope"];
/** limit calls in any interval of window_seconds. */
export type RateLimit = Schemas["RateLimit"];
/** amount added to the quota every interval_seconds. */
export type Refill = Schemas["Refill"];

/** What every call takes besides its arguments. */
export interface CallOptions {
  /** Aborts the call, a wait before a retry included. */
  signal?: AbortSignal;
}
