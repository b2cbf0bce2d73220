// The client's own rules, against a fake fetch: which answers are retried
// and after how long, what an error carries, and where requests go. The
// walk-through (walkthrough.test.mjs) runs the same client against a host.
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { test } from "node:test";

import { createClient, Indigo, IndigoError } from "../dist/index.js";

// A fake host: answers[i] answers the i-th request; every request is kept.
function fake(...answers) {
  const sent = [];
  const fetch = async (req) => {
    sent.push({ method: req.method, url: req.url, headers: req.headers, body: await req.text() });
    const a = answers[Math.min(sent.length - 1, answers.length - 1)];
    return typeof a === "function" ? a() : a.clone();
  };
  return { fetch, sent };
}

const json = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
const limited = (retryAfter) =>
  json(429, { error: { code: "rate_limited", message: "slow down" } }, retryAfter === undefined ? {} : { "Retry-After": retryAfter });
const unavailable = () => json(503, { error: { code: "unavailable", message: "later" } }, { "Retry-After": "0" });
const me = { org_id: "org_1", key_id: "key_1", name: "k", scopes: null, status: "active", expires_at: null };
const key = { id: "key_2", name: "k2" };

function client(f, opts = {}) {
  return new Indigo({ baseUrl: "http://indigo.test", key: "indigo_sk_x", fetch: f.fetch, retryBackoffMs: 1, ...opts });
}

test("every request carries the key and asks for JSON", async () => {
  const f = fake(json(200, me));
  await client(f).me();
  assert.equal(f.sent[0].headers.get("Authorization"), "Bearer indigo_sk_x");
  assert.equal(f.sent[0].headers.get("Accept"), "application/json");
  assert.equal(f.sent[0].url, "http://indigo.test/api/v2/me");
});

test("the base URL keeps its path prefix and must be http(s)", async () => {
  const f = fake(json(200, { key }));
  await client(f, { baseUrl: "https://example.com/indigo/" }).keys.get("key_2");
  assert.equal(f.sent[0].url, "https://example.com/indigo/api/v2/keys/key_2");
  assert.throws(() => new Indigo({ baseUrl: "example.com", key: "k" }), TypeError);
  assert.throws(() => new Indigo({ baseUrl: "ftp://example.com", key: "k" }), TypeError);
  assert.throws(() => createClient({ baseUrl: "http://example.com", key: "" }), /no API key/);
});

test("a 429 is retried, after Retry-After in seconds or as a date, within the attempts", async () => {
  let f = fake(limited("0"), limited("0"), json(200, me));
  assert.equal((await client(f).me()).key_id, "key_1");
  assert.equal(f.sent.length, 3);

  f = fake(limited("0"));
  await assert.rejects(client(f).me(), { name: "IndigoError", status: 429, code: "rate_limited" });
  assert.equal(f.sent.length, 3, "3 attempts by default");

  f = fake(limited("0"));
  await assert.rejects(client(f, { retries: 0 }).me(), { status: 429 });
  assert.equal(f.sent.length, 1);

  f = fake(() => limited(new Date(Date.now() - 1000).toUTCString()), json(200, me));
  await client(f).me();
  assert.equal(f.sent.length, 2, "a date in the past is no wait");

  // Without Retry-After: the backoff.
  f = fake(limited(), json(200, me));
  await client(f).me();
  assert.equal(f.sent.length, 2);
});

test("a Retry-After longer than the longest wait is returned at once", async () => {
  const f = fake(limited("60"));
  const start = performance.now();
  const err = await client(f, { maxRetryWaitMs: 1000 }).me().catch((e) => e);
  assert.ok(err instanceof IndigoError);
  assert.equal(err.retryAfterMs, 60_000);
  assert.equal(f.sent.length, 1);
  assert.ok(performance.now() - start < 1000);
});

test("a 503 is retried only when the call is safe to repeat", async () => {
  // GET, PUT, DELETE: yes.
  let f = fake(unavailable(), json(200, { key }));
  await client(f).keys.get("key_2");
  assert.equal(f.sent.length, 2);
  f = fake(unavailable(), json(200, { key }));
  await client(f).keys.setScopes("key_2", []);
  assert.equal(f.sent.length, 2);
  // A POST that makes a key: no, it might have made one.
  f = fake(unavailable(), json(201, {}));
  await assert.rejects(client(f).keys.create({ name: "x" }), { status: 503, code: "unavailable" });
  assert.equal(f.sent.length, 1);
  // A metered POST carries an Idempotency-Key: yes, with the same key and body.
  f = fake(unavailable(), json(200, { valid: true, code: "valid" }));
  await client(f).keys.verify("indigo_sk_y", ["projects:read"]);
  assert.equal(f.sent.length, 2);
  assert.match(f.sent[0].headers.get("Idempotency-Key"), /^ts-[0-9a-f]{32}$/);
  assert.equal(f.sent[1].headers.get("Idempotency-Key"), f.sent[0].headers.get("Idempotency-Key"));
  assert.deepEqual(JSON.parse(f.sent[1].body), { key: "indigo_sk_y", scopes: ["projects:read"] });
  f = fake(unavailable(), json(200, {}));
  await client(f).request("POST", "/projects", { body: { name: "p" } });
  assert.equal(f.sent.length, 2);
  assert.equal(f.sent[1].body, '{"name":"p"}');
});

test("a replayed answer is not retried", async () => {
  const f = fake(json(429, { error: { code: "rate_limited", message: "m" } }, { "Idempotent-Replayed": "true", "Retry-After": "0" }));
  await assert.rejects(client(f).request("POST", "/projects", { body: {} }), { status: 429 });
  assert.equal(f.sent.length, 1);
});

test("an error that is not Indigo's keeps its first line", async () => {
  const f = fake(new Response("<html>bad gateway\n<p>nginx</p>", { status: 502, statusText: "Bad Gateway", headers: { "X-Request-Id": "r1" } }));
  const err = await client(f).scopes().catch((e) => e);
  assert.ok(err instanceof IndigoError);
  assert.equal(err.status, 502);
  assert.equal(err.code, "");
  assert.equal(err.message, "<html>bad gateway");
  assert.equal(err.requestId, "r1");
  const empty = await client(fake(new Response(null, { status: 500, statusText: "Internal Server Error" }))).scopes().catch((e) => e);
  assert.equal(empty.message, "Internal Server Error");
});

test("request sends JSON or the body as it is, and reads JSON or text", async () => {
  const f = fake(
    json(200, { ok: true }),
    new Response("plain", { headers: { "Content-Type": "text/plain" } }),
    new Response(null, { status: 204 }),
  );
  const c = client(f);
  assert.deepEqual(await c.request("POST", "reports", { body: { a: 1 }, query: { n: 2, skip: undefined } }), { ok: true });
  assert.equal(f.sent[0].url, "http://indigo.test/api/v2/reports?n=2");
  assert.equal(f.sent[0].headers.get("Content-Type"), "application/json");
  assert.equal(await c.request("put", "/api/v1/raw", { body: new Uint8Array([104, 105]) }), "plain");
  assert.equal(f.sent[1].method, "PUT");
  assert.equal(f.sent[1].url, "http://indigo.test/api/v1/raw");
  assert.equal(f.sent[1].body, "hi");
  assert.equal(await c.request("DELETE", "/things/1"), undefined);
  assert.equal(f.sent[2].body, "");
});

test("an abort during a wait rejects with the signal's reason", async () => {
  const f = fake(limited("30"));
  const ac = new AbortController();
  const p = client(f).me({ signal: ac.signal });
  setTimeout(() => ac.abort(new Error("stop")), 50);
  await assert.rejects(p, /stop/);
  assert.equal(f.sent.length, 1);
});

test("list follows next_cursor and passes the page size", async () => {
  const f = fake(json(200, { keys: [{ id: "a" }, { id: "b" }], next_cursor: "c1" }), json(200, { keys: [{ id: "c" }], next_cursor: null }));
  const ids = [];
  for await (const k of client(f).keys.list({ pageSize: 2 })) ids.push(k.id);
  assert.deepEqual(ids, ["a", "b", "c"]);
  assert.equal(f.sent[0].url, "http://indigo.test/api/v2/keys?limit=2");
  assert.equal(f.sent[1].url, "http://indigo.test/api/v2/keys?limit=2&cursor=c1");
});

// The library runs in browsers: nothing of Node.js in what it ships.
test("dist uses no Node.js API", async () => {
  const dir = new URL("../dist/", import.meta.url);
  for (const name of (await readdir(dir)).filter((n) => n.endsWith(".js"))) {
    const src = await readFile(new URL(name, dir), "utf8");
    const found = src.match(/\bfrom\s+["']node:|\brequire\(|\bprocess\.|\bBuffer\b/);
    assert.equal(found, null, `${name} uses ${found?.[0]}`);
  }
});
