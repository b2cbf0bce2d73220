import type { Client } from "openapi-fetch";

import { errorFrom } from "./errors.js";
import { idempotencyHeader, newIdempotencyKey } from "./retry.js";
import type { paths } from "./schema.js";
import type {
  CallOptions,
  CreateKey,
  CreatedKey,
  Key,
  KeyStats,
  KeyUpdate,
  RollOptions,
  Verification,
} from "./types.js";

/** What list takes. */
export interface ListOptions extends CallOptions {
  /** How many keys each request fetches (1 to 200; default 50). It does not bound how many list yields. */
  pageSize?: number;
}

/** The outcome of a generated call, as openapi-fetch returns it. */
interface Outcome<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The success body of a generated call, or its IndigoError. */
export async function answer<T>(call: Promise<Outcome<T>>): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok) return data as T;
  throw errorFrom(response, error);
}

/** The key management API (/api/v2/keys) of the client's org. */
export class Keys {
  readonly #raw: Client<paths>;

  /** Made by Indigo: use indigo.keys. */
  constructor(raw: Client<paths>) {
    this.#raw = raw;
  }

  /** Makes a key (api-keys:write) and returns it with its plaintext, raw_key. */
  create(body: CreateKey, opts: CallOptions = {}): Promise<CreatedKey> {
    return answer(this.#raw.POST("/api/v2/keys", { body, signal: opts.signal }));
  }

  /** One key of the org (api-keys:read); another org's key is a 404 not_found. */
  async get(id: string, opts: CallOptions = {}): Promise<Key> {
    const r = await answer(this.#raw.GET("/api/v2/keys/{id}", { params: { path: { id } }, signal: opts.signal }));
    return r.key;
  }

  /**
   * Every key of the org, newest first (api-keys:read), fetching the pages
   * as the loop reaches them: a loop left early fetches no further page.
   * A failed page ends the loop with its error.
   *
   *     for await (const key of indigo.keys.list()) console.log(key.name);
   */
  async *list(opts: ListOptions = {}): AsyncGenerator<Key, void, undefined> {
    let cursor: string | undefined;
    do {
      const page = await answer(
        this.#raw.GET("/api/v2/keys", {
          params: { query: { limit: opts.pageSize, cursor } },
          signal: opts.signal,
        }),
      );
      yield* page.keys;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  /** Changes a key (api-keys:write): a field left out stays, null removes it. A key cannot disable itself. */
  async update(id: string, body: KeyUpdate, opts: CallOptions = {}): Promise<Key> {
    const r = await answer(
      this.#raw.PATCH("/api/v2/keys/{id}", { params: { path: { id } }, body, signal: opts.signal }),
    );
    return r.key;
  }

  /** Replaces a key's scopes (api-keys:write): [] leaves it none, null makes it a superkey. An unknown scope is a 422 unknown_scope. */
  async setScopes(id: string, scopes: string[] | null, opts: CallOptions = {}): Promise<Key> {
    const r = await answer(
      this.#raw.PUT("/api/v2/keys/{id}/scopes", { params: { path: { id } }, body: { scopes }, signal: opts.signal }),
    );
    return r.key;
  }

  /** Makes a key a superkey: every scope, those registered later too. */
  setSuperkey(id: string, opts: CallOptions = {}): Promise<Key> {
    return this.setScopes(id, null, opts);
  }

  /**
   * Replaces a key (api-keys:write): the successor, with the same name,
   * scopes and limits, comes with its plaintext; the old key (previous)
   * keeps working for grace_seconds (left out: the host's [api]
   * roll_grace; 0: it expires now), then expires.
   */
  roll(id: string, body: RollOptions = {}, opts: CallOptions = {}): Promise<CreatedKey> {
    return answer(this.#raw.POST("/api/v2/keys/{id}/roll", { params: { path: { id } }, body, signal: opts.signal }));
  }

  /** Ends a key at once and for good (api-keys:write). A key cannot revoke itself. */
  async revoke(id: string, opts: CallOptions = {}): Promise<void> {
    await answer(this.#raw.DELETE("/api/v2/keys/{id}", { params: { path: { id } }, signal: opts.signal }));
  }

  /** A key's usage (api-keys:read): written with the request log, so a call shows up within the log's flush interval. */
  stats(id: string, opts: CallOptions = {}): Promise<KeyStats> {
    return answer(this.#raw.GET("/api/v2/keys/{id}/stats", { params: { path: { id } }, signal: opts.signal }));
  }

  /**
   * Checks a key of the client's org for a service that takes keys itself
   * (api-keys:verify; metered, so every attempt carries one
   * Idempotency-Key). A valid check counts toward the checked key's rate
   * limit and quota, as a call would. With scopes, a key that lacks one is
   * insufficient_scope. An invalid key is a Verification, not an error.
   */
  verify(key: string, scopes?: string[], opts: CallOptions = {}): Promise<Verification> {
    return answer(
      this.#raw.POST("/api/v2/keys/verify", {
        body: scopes?.length ? { key, scopes } : { key },
        headers: { [idempotencyHeader]: newIdempotencyKey() },
        signal: opts.signal,
      }),
    );
  }
}
