// Issue 16's walk-through with the TypeScript client against a real host,
// the same steps as the Go client's (core/clienttest/walkthrough_test.go).
// core/clienttest/typescript_test.go starts the host (with the projects
// module, on the wall clock) on each engine, builds dist/ and runs this
// file with:
//   INDIGO_URL           the host
//   INDIGO_KEY           a superkey of the org INDIGO_ORG (raw)
//   INDIGO_KEY_ID        that key's id
//   INDIGO_ORG           its org
//   INDIGO_OTHER_KEY_ID  a key of another org
// Without INDIGO_URL it skips.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Indigo, IndigoError } from "../dist/index.js";

const env = process.env;

// A client whose every exchange is recorded: method, path, status and the
// Idempotency-Key it carried.
function recorded(key, opts = {}) {
  const log = [];
  const c = new Indigo({
    baseUrl: env.INDIGO_URL,
    key,
    ...opts,
    fetch: async (req) => {
      const res = await fetch(req);
      log.push({
        method: req.method,
        path: new URL(req.url).pathname,
        status: res.status,
        idempotencyKey: req.headers.get("Idempotency-Key"),
      });
      return res;
    },
  });
  return { c, log };
}

// Checks that p rejects with Indigo's answer of status and code, with a
// message and a request id.
async function rejectsWith(what, p, status, code) {
  let err;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof IndigoError, `${what}: ${err}, want an IndigoError ${status} ${code}`);
  assert.ok(err instanceof Error);
  assert.equal(err.status, status, `${what}: ${err}`);
  assert.equal(err.code, code, `${what}: ${err}`);
  assert.ok(err.message, `${what}: no message`);
  assert.ok(err.requestId, `${what}: no request id`);
  assert.equal(String(err), `IndigoError: ${status} ${code}: ${err.message} (request ${err.requestId})`);
  return err;
}

test("the TypeScript client's walk-through", { skip: !env.INDIGO_URL && "INDIGO_URL is not set" }, async (t) => {
  const org = env.INDIGO_ORG;
  const adminId = env.INDIGO_KEY_ID;
  const { c, log } = recorded(env.INDIGO_KEY);

  await t.test("me and scopes", async () => {
    const me = await c.me();
    assert.equal(me.key_id, adminId);
    assert.equal(me.org_id, org);
    assert.equal(me.scopes, null); // a superkey
    assert.equal(me.status, "active");
    const scopes = await c.scopes();
    assert.ok(
      scopes.some((s) => s.id === "projects:write" && s.module === "projects"),
      `scopes lack projects:write: ${JSON.stringify(scopes)}`,
    );
  });

  // Five keys, the admin's makes six: three pages of two.
  const created = [];
  await t.test("create", async () => {
    for (const [i, name] of ["k1", "k2", "k3", "k4", "k5"].entries()) {
      const mark = log.length;
      const k = await c.keys.create({
        name,
        scopes: ["api-keys:read"],
        rate_limit: { limit: 60, window_seconds: 60 },
        metadata: { n: i },
      });
      assert.ok(k.raw_key.startsWith("indigo_sk_"), `raw_key ${k.raw_key}`);
      assert.ok(k.warning);
      assert.equal(k.key.name, name);
      assert.deepEqual(k.key.scopes, ["api-keys:read"]);
      assert.deepEqual(k.key.rate_limit, { limit: 60, window_seconds: 60 });
      assert.deepEqual(k.key.metadata, { n: i });
      // Create is not metered: no Idempotency-Key, and a 503 is not retried.
      assert.equal(log[mark].idempotencyKey, null);
      created.push(k.key.id);
    }
  });

  await t.test("list across pages", async () => {
    let mark = log.length;
    const listed = [];
    for await (const k of c.keys.list({ pageSize: 2 })) listed.push(k.id);
    assert.deepEqual(listed, [...created].reverse().concat(adminId)); // newest first
    const pages = log.slice(mark);
    assert.equal(pages.length, 3, `list sent ${JSON.stringify(pages)}, want 3 pages`);
    assert.ok(pages.every((p) => p.method === "GET" && p.path === "/api/v2/keys" && p.status === 200));
    // Leaving the loop early fetches no further page.
    mark = log.length;
    for await (const k of c.keys.list({ pageSize: 2 })) {
      assert.ok(k.id);
      break;
    }
    assert.equal(log.length - mark, 1, "a loop left after its first key fetched more than one page");
  });

  await t.test("update and get", async () => {
    const id = created[0];
    let k = await c.keys.update(id, { name: "renamed", metadata: { team: "a" } });
    assert.equal(k.name, "renamed");
    assert.deepEqual(k.metadata, { team: "a" });
    assert.notEqual(k.rate_limit, null);
    // null removes a setting; left out, it stays.
    const expires = new Date(Date.now() + 48 * 3600 * 1000);
    expires.setUTCMilliseconds(0);
    k = await c.keys.update(id, { rate_limit: null, expires_at: expires.toISOString() });
    assert.equal(k.name, "renamed");
    assert.equal(k.rate_limit, null);
    assert.equal(Date.parse(k.expires_at), expires.getTime());
    const got = await c.keys.get(id);
    assert.equal(got.name, "renamed");
    assert.equal(got.rate_limit, null);
  });

  await t.test("scopes", async () => {
    const id = created[0];
    let k = await c.keys.setScopes(id, ["projects:read", "projects:write"]);
    assert.deepEqual(k.scopes, ["projects:read", "projects:write"]);
    await rejectsWith("setScopes with an unknown scope", c.keys.setScopes(id, ["nope:read"]), 422, "unknown_scope");
    k = await c.keys.setSuperkey(id);
    assert.equal(k.scopes, null);
    k = await c.keys.setScopes(id, []);
    assert.deepEqual(k.scopes, []);
  });

  // Roll: the successor works, and so does the old key, expiring.
  let rolled;
  await t.test("roll, the old key still valid, and module routes", async () => {
    const ck = await c.keys.create({ name: "to roll", scopes: ["projects:read", "projects:write"] });
    rolled = await c.keys.roll(ck.key.id, { grace_seconds: 3600 });
    assert.ok(rolled.raw_key && rolled.raw_key !== ck.raw_key);
    assert.notEqual(rolled.key.id, ck.key.id);
    assert.equal(rolled.key.name, "to roll");
    assert.equal(rolled.previous?.id, ck.key.id);
    assert.equal(rolled.previous?.status, "expiring");
    assert.ok(rolled.previous?.expires_at);

    const { c: oldC } = recorded(ck.raw_key);
    const me = await oldC.me();
    assert.equal(me.status, "expiring");
    assert.equal(me.key_id, ck.key.id);

    const { c: newC, log: newLog } = recorded(rolled.raw_key);
    const made = await newC.request("POST", "/projects", { body: { name: "walk" } });
    assert.ok(made.project.id);
    assert.equal(made.project.name, "walk");
    assert.match(newLog.at(-1).idempotencyKey, /^ts-[0-9a-f]{32}$/);
    const listed = await oldC.request("GET", "projects", { query: { unused: undefined } });
    assert.ok(listed.projects.some((p) => p.id === made.project.id));

    // One Idempotency-Key twice: the second answer is the kept one.
    const headers = { "Idempotency-Key": "walk-once" };
    const first = await newC.request("POST", "/api/v2/projects", { body: { name: "once" }, headers });
    const again = await newC.request("POST", "/api/v2/projects", { body: { name: "once" }, headers });
    assert.equal(again.project.id, first.project.id);
    await rejectsWith(
      "the same Idempotency-Key with another body",
      newC.request("POST", "/projects", { body: { name: "other" }, headers }),
      422,
      "idempotency_key_reused",
    );
  });

  await t.test("stats", async () => {
    let st;
    for (const deadline = Date.now() + 5000; ; await new Promise((r) => setTimeout(r, 20))) {
      st = await c.keys.stats(rolled.key.id);
      if (st.total >= 1 || Date.now() > deadline) break;
    }
    assert.equal(st.key_id, rolled.key.id);
    assert.ok(st.total >= 1, `stats: ${JSON.stringify(st)}`);
    assert.equal(st.by_route[0]?.route, "/api/v2/projects");
  });

  await t.test("verify", async () => {
    const mark = log.length;
    let v = await c.keys.verify(rolled.raw_key, ["projects:read"]);
    assert.equal(v.valid, true);
    assert.equal(v.code, "valid");
    assert.equal(v.key_id, rolled.key.id);
    assert.equal(v.org_id, org);
    assert.deepEqual(v.scopes, ["projects:read", "projects:write"]);
    assert.match(log[mark].idempotencyKey, /^ts-[0-9a-f]{32}$/);
    v = await c.keys.verify(rolled.raw_key, ["api-keys:write"]);
    assert.equal(v.valid, false);
    assert.equal(v.code, "insufficient_scope");
  });

  await t.test("revoke, then 401", async () => {
    await c.keys.revoke(rolled.key.id);
    const { c: newC } = recorded(rolled.raw_key);
    await rejectsWith("me with a revoked key", newC.me(), 401, "unauthorized");
    const v = await c.keys.verify(rolled.raw_key);
    assert.equal(v.valid, false);
    assert.equal(v.code, "revoked");
    const got = await c.keys.get(rolled.key.id);
    assert.equal(got.status, "revoked");
    assert.ok(got.revoked_at);
    await rejectsWith("a key revoking itself", c.keys.revoke(adminId), 409, "self_action");
  });

  await t.test("another org's key is a 404", async () => {
    await rejectsWith("get of another org's key", c.keys.get(env.INDIGO_OTHER_KEY_ID), 404, "not_found");
    await rejectsWith("get of no key", c.keys.get("key_nope"), 404, "not_found");
  });

  // A key limited to 1 call a second: the second call gets 429 with
  // Retry-After, and the client waits and succeeds.
  await t.test("a 429 is retried after Retry-After", async () => {
    const lim = await c.keys.create({ name: "slow", rate_limit: { limit: 1, window_seconds: 1 } });
    const { c: slow, log: slowLog } = recorded(lim.raw_key);
    await slow.me();
    const mark = slowLog.length;
    const start = performance.now();
    await slow.me();
    const waited = performance.now() - start;
    const sent = slowLog.slice(mark);
    assert.deepEqual(
      sent.map((e) => e.status),
      [429, 200],
      `the second call sent ${JSON.stringify(sent)}, want a 429 then a 200`,
    );
    assert.ok(waited >= 500, `the retry came after ${waited} ms: Retry-After was not waited`);
    // Both attempts of a metered call carry one Idempotency-Key.
    assert.ok(sent[0].idempotencyKey);
    assert.equal(sent[1].idempotencyKey, sent[0].idempotencyKey);
    t.diagnostic(`the call over the limit got ${sent.map((e) => e.status)} and succeeded after ${Math.round(waited)} ms`);

    // Without retries the 429 is the error, with its wait.
    const { c: once } = recorded(lim.raw_key, { retries: 0 });
    const e = await rejectsWith("a call over the limit, not retried", once.me(), 429, "rate_limited");
    assert.ok(e.retryAfterMs > 0, `the 429 carries no Retry-After: ${e.retryAfterMs}`);
  });

  await t.test("an abort ends a wait for Retry-After", async () => {
    // 1 call a minute: the second waits about a minute, unless aborted.
    const lim = await c.keys.create({ name: "slower", rate_limit: { limit: 1, window_seconds: 60 } });
    const { c: slow, log: slowLog } = recorded(lim.raw_key, { maxRetryWaitMs: 120_000 });
    await slow.me();
    const start = performance.now();
    await assert.rejects(slow.me({ signal: AbortSignal.timeout(200) }), (err) => {
      assert.equal(err.name, "TimeoutError");
      return true;
    });
    const took = performance.now() - start;
    assert.ok(took < 5000, `the aborted call took ${took} ms`);
    assert.deepEqual(
      slowLog.map((e) => e.status),
      [200, 429],
    );
    // An aborted signal sends nothing.
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(c.keys.get(created[1], { signal: ac.signal }), { name: "AbortError" });
  });
});
