// Browser tests of the embedded UI, in Debian's headless Chromium driven by
// playwright-core. core/ui/browser_test.go starts a host on loopback, seeds
// it, and runs this file with the addresses and sign-in links in the
// environment. The tests run in order and share the owner's session.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through go test ./core/ui`);
  return v;
}

const BASE = env('INDIGO_URL');
const ARTIFACTS = env('INDIGO_ARTIFACTS');
const ORG_A = env('INDIGO_ORG_A');
const ORG_B = env('INDIGO_ORG_B');
const KEY_RE = /^indigo_sk_[0-9A-Za-z]{28}$/;

let browser;
let owner; // {ctx, page, problems}
const created = {}; // what one test leaves for the next

before(async () => {
  browser = await chromium.launch({
    executablePath: env('INDIGO_CHROMIUM'),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
});

after(async () => {
  if (browser) await browser.close();
});

// signIn opens a fresh browser profile and follows a one-time link. It
// records page errors and console errors (a CSP violation is one).
async function signIn(link) {
  const ctx = await browser.newContext({ baseURL: BASE, viewport: { width: 1280, height: 900 } });
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
  const page = await ctx.newPage();
  page.setDefaultTimeout(10000);
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // A refused fetch that a test makes on purpose logs "Failed to load
    // resource"; anything else (a CSP violation, a script error) counts.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console: ${m.text()}`);
  });
  const res = await page.goto(link);
  assert.equal(res.status(), 200, 'the sign-in link lands on a page');
  assert.equal(new URL(page.url()).pathname, '/settings/api-keys', 'the sign-in link lands on Settings → API Keys');
  return { ctx, page, problems };
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

const WIDE = { width: 1280, height: 900 };
const NARROW = { width: 390, height: 844 };

// overflowing lists the elements that reach past the viewport's sides
// (visually hidden ones aside), and the page's own horizontal overflow.
async function overflowing(page) {
  return page.evaluate(() => {
    const w = document.documentElement.clientWidth;
    const out = [];
    if (document.documentElement.scrollWidth > w + 1) out.push(`the page scrolls sideways: ${document.documentElement.scrollWidth} > ${w}`);
    for (const el of document.body.querySelectorAll('*')) {
      if (el.closest('.ikm-sr') || el.closest('[hidden]')) continue;
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (r.right > w + 1 || r.left < -1) out.push(`${el.tagName.toLowerCase()}.${el.className} [${Math.round(r.left)}, ${Math.round(r.right)}]`);
    }
    return out.slice(0, 10);
  });
}

// brokenInTheMiddle lists names, masks, ids, chips and times drawn on more
// than one line.
async function brokenInTheMiddle(page) {
  return page.evaluate(() => [...document.querySelectorAll('.ikm-keyname, .ikm-mask, .ikm-chip, .ikm-time, .ikm-id, .ikm-badge')]
    .filter((el) => {
      const r = el.getBoundingClientRect();
      if (r.height === 0) return false;
      const fs = parseFloat(getComputedStyle(el).fontSize);
      return el.getClientRects().length > 1 || r.height > fs * 2;
    })
    .map((el) => el.textContent));
}

// shotBoth saves the page at 1280 px (name.png) and at 390 px
// (name-390.png), and fails when anything runs outside the narrow viewport
// or a name, key mask or scope chip breaks in the middle at either width.
async function shotBoth(page, name) {
  await page.setViewportSize(WIDE);
  await shot(page, name);
  assert.deepEqual(await brokenInTheMiddle(page), [], `${name} at 1280 px: nothing breaks in the middle`);
  await page.setViewportSize(NARROW);
  await page.waitForTimeout(50);
  await shot(page, `${name}-390`);
  assert.deepEqual(await overflowing(page), [], `${name} at 390 px: nothing is wider than the viewport`);
  assert.deepEqual(await brokenInTheMiddle(page), [], `${name} at 390 px: nothing breaks in the middle`);
  await page.setViewportSize(WIDE);
}

// me calls /api/v2/me with a key from outside the browser.
async function me(key) {
  const res = await fetch(`${BASE}/api/v2/me`, { headers: { Authorization: `Bearer ${key}` } });
  return { status: res.status, body: res.status === 200 ? await res.json() : null };
}

function row(page, id) {
  return page.locator(`tr[data-key-id="${id}"]`);
}

async function revealedKey(page) {
  const secret = page.locator('.ikm-reveal [data-secret]');
  await secret.waitFor();
  const raw = (await secret.textContent()).trim();
  assert.match(raw, KEY_RE, 'the reveal shows a whole key');
  return raw;
}

async function dismissReveal(page, raw) {
  await page.getByRole('button', { name: 'I have saved it' }).click();
  await page.locator('.ikm-reveal').waitFor({ state: 'detached' });
  assert.ok(!(await page.content()).includes(raw), 'the key is gone from the DOM after dismissal');
  const stored = await page.evaluate(() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)]));
  assert.ok(!stored.includes(raw), 'the key is not kept in web storage');
}

test('sign in, create a key, copy it, and the reveal is gone after dismissal', async () => {
  owner = await signIn(env('INDIGO_LOGIN_OWNER'));
  const { page } = owner;
  const doc = await page.request.get('/settings/api-keys');
  const csp = doc.headers()['content-security-policy'];
  assert.match(csp, /frame-ancestors 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline/);

  await page.getByRole('heading', { name: 'API keys', exact: true }).waitFor();
  await page.locator('tr[data-key-id]').first().waitFor(); // the key the Go test seeded
  const org = page.getByTestId('org-name');
  assert.equal(await org.textContent(), 'Acme', 'the header names the organization');
  assert.equal(await org.getAttribute('title'), `Organization id: ${ORG_A}`);
  const icon = await page.request.get('/favicon.ico');
  assert.equal(icon.status(), 200, '/favicon.ico is served');
  assert.equal(icon.headers()['content-type'], 'image/x-icon');

  await page.getByRole('button', { name: 'Create key' }).click();
  const form = page.getByRole('form', { name: 'Create an API key' });
  await form.getByLabel('Name').fill('ci-deploy');
  // The superkey choice warns before it is taken.
  await form.getByLabel('Full access (superkey)').check();
  await form.getByText('Full access: this key can call every route').waitFor();
  await form.getByLabel('Full access (superkey)').uncheck();
  await form.getByLabel('api-keys:read').check();
  await form.getByLabel('Expires').selectOption({ label: 'In 30 days' });
  await form.getByLabel('Rate limit (requests, optional)').fill('600');
  await shot(page, 'create-form');
  await form.getByRole('button', { name: 'Create key' }).click();

  const raw = await revealedKey(page);
  await page.getByText('it cannot be shown again').waitFor();
  await page.getByRole('button', { name: 'Copy' }).click();
  await page.getByText('Copied.').waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), raw, 'Copy puts the key on the clipboard');
  await shot(page, 'create-reveal');

  const m = await me(raw);
  assert.equal(m.status, 200, 'the new key works');
  assert.deepEqual(m.body.scopes, ['api-keys:read']);
  assert.equal(m.body.name, 'ci-deploy');
  assert.ok(m.body.expires_at, 'the chosen expiry was sent');

  await dismissReveal(page, raw);
  const r = row(page, m.body.key_id);
  await r.waitFor();
  const [shown, last4] = (await r.locator('code.ikm-mask').textContent()).split('…');
  assert.ok(raw.startsWith(shown) && shown.length < 20, `the list shows a display prefix (${shown})`);
  assert.equal(last4, raw.slice(-4), 'the list shows the last four characters');
  assert.ok((await r.textContent()).includes('api-keys:read'));
  assert.equal(await r.getAttribute('data-status'), 'active');
  created.first = { raw, id: m.body.key_id };
});

test('rename, change scopes, disable, roll and revoke from the list', async () => {
  const { page } = owner;
  const { raw, id } = created.first;

  // Rename in place.
  await page.getByRole('button', { name: 'Rename ci-deploy' }).click();
  const input = page.getByLabel('New name for ci-deploy');
  await input.fill('ci-deploy-2');
  await input.press('Enter');
  await row(page, id).getByText('ci-deploy-2').waitFor();
  assert.equal((await me(raw)).body.name, 'ci-deploy-2');

  // Change scopes.
  await page.getByRole('button', { name: 'Scopes ci-deploy-2' }).click();
  const panel = page.locator(`tr[data-panel-for="${id}"]`);
  await panel.getByLabel('api-keys:write').check();
  await panel.getByRole('button', { name: 'Save scopes' }).click();
  await row(page, id).getByText('api-keys:write').waitFor();
  assert.deepEqual((await me(raw)).body.scopes.sort(), ['api-keys:read', 'api-keys:write']);

  // Disable and enable: each takes effect on the next request.
  await page.getByRole('button', { name: 'Disable ci-deploy-2' }).click();
  await row(page, id).locator('[data-badge="disabled"]').waitFor();
  assert.equal((await me(raw)).status, 401, 'a disabled key is refused');
  await page.getByRole('button', { name: 'Enable ci-deploy-2' }).click();
  await row(page, id).locator('[data-badge="disabled"]').waitFor({ state: 'detached' });
  assert.equal((await me(raw)).status, 200, 'an enabled key works again');

  // Roll with a grace period: the old key shows as expiring and still works.
  await page.getByRole('button', { name: 'Roll ci-deploy-2' }).click();
  await page.getByLabel('Grace period for the old key').selectOption({ label: '1 hour' });
  await page.getByRole('button', { name: 'Roll key' }).click();
  const rolled = await revealedKey(page);
  assert.notEqual(rolled, raw);
  await page.locator('.ikm-reveal').getByText('The old key keeps working until').waitFor();
  await shot(page, 'roll-reveal');
  const fresh = await me(rolled);
  assert.equal(fresh.status, 200, 'the new key calls /api/v2/me');
  assert.deepEqual(fresh.body.scopes.sort(), ['api-keys:read', 'api-keys:write'], 'the successor keeps the scopes');
  await dismissReveal(page, rolled);
  const old = row(page, id);
  await old.locator('[data-badge="expiring"]').waitFor();
  assert.match(await old.locator('[data-badge="expiring"]').textContent(), /expiring · (59|60) min left/);
  assert.equal((await me(raw)).status, 200, 'the old key works during its grace period');
  await shot(page, 'list-after-roll');

  // Revoke the new key after the confirmation.
  await row(page, fresh.body.key_id).getByRole('button', { name: 'Revoke ci-deploy-2' }).click();
  await page.getByText('Revoke ci-deploy-2?').waitFor();
  await page.getByRole('button', { name: 'Yes, revoke key' }).click();
  await row(page, fresh.body.key_id).locator('[data-badge="revoked"]').waitFor();
  assert.equal((await me(rolled)).status, 401, 'the revoked key gets 401');
  created.rolled = { raw: rolled, id: fresh.body.key_id };

  // The usage view charts the calls the old key made, by day and status.
  // (A 401 belongs to no key, so a 404 makes the client error here.)
  const missing = await fetch(`${BASE}/api/v2/keys/key_01NOSUCHKEY0000000000000000`, { headers: { Authorization: `Bearer ${raw}` } });
  assert.equal(missing.status, 404);
  await page.waitForTimeout(100); // let the request log flush
  for (let i = 0; ; i++) {
    await old.getByRole('button', { name: 'Usage of ci-deploy-2' }).click();
    const chart = page.getByTestId('usage-chart');
    try {
      await chart.waitFor({ timeout: 1000 });
      break;
    } catch (err) {
      if (i === 10) throw err;
    }
  }
  const usage = page.getByRole('region', { name: 'Usage of ci-deploy-2' });
  assert.match(await usage.textContent(), /\d+ calls in all/);
  assert.ok((await usage.getByTestId('top-routes').textContent()).includes('/api/v2/me'), 'top routes list /api/v2/me');
  assert.ok(await usage.locator('rect.ikm-bar-client').count() >= 1, 'the 404 shows as a client error');
  // All the calls are from today: one day is drawn in the middle, with its
  // date once.
  const bars = await usage.locator('svg.ikm-chart rect').evaluateAll((rs) => rs.map((r) => Number(r.getAttribute('x')) + Number(r.getAttribute('width')) / 2));
  assert.ok(bars.length >= 1 && bars.every((x) => Math.abs(x - 320) < 30), `one day's bars sit in the middle (${bars})`);
  const dates = await usage.locator('svg.ikm-chart text.ikm-tick').evaluateAll((ts) => ts.map((t) => t.textContent).filter((t) => /^\d{4}-\d{2}-\d{2}$/.test(t)));
  assert.equal(dates.length, 1, `one day has one date label, not ${dates}`);
  await shot(page, 'key-usage');
});

test('API errors are shown next to the field that caused them', async () => {
  const { page } = owner;
  await page.getByRole('button', { name: 'Create key' }).click();
  const form = page.getByRole('form', { name: 'Create an API key' });
  await form.getByLabel('Name').fill('x'.repeat(129));
  await form.getByRole('button', { name: 'Create key' }).click();
  await form.locator('[data-error-for="name"]').getByText('name must be 1 to 128 characters').waitFor();

  await form.getByLabel('Name').fill('backfill');
  await form.getByLabel('Expires').selectOption({ label: 'On a date…' });
  await form.getByLabel('Expiry date').fill('2020-01-01');
  await form.getByRole('button', { name: 'Create key' }).click();
  await form.locator('[data-error-for="expiry"]').getByText('expires_at must be in the future').waitFor();
  assert.equal(await form.locator('[data-error-for="name"]').textContent(), '', 'the earlier error is cleared');

  await form.getByLabel('Expires').selectOption({ label: 'Never' });
  await form.getByLabel('Rate limit (requests, optional)').fill('0');
  await form.getByRole('button', { name: 'Create key' }).click();
  await form.locator('[data-error-for="rate"]').getByText('rate_limit needs limit >= 1').waitFor();
  await shot(page, 'create-errors');
  await form.getByRole('button', { name: 'Cancel' }).click();
  await form.waitFor({ state: 'detached' });

  // Nothing was created by the refused attempts.
  const keys = await page.evaluate(async () => (await (await fetch('/api/v2/keys')).json()).keys.map((k) => k.name));
  assert.ok(!keys.includes('backfill'));
});

test('a validation error goes away once its field is fixed', async () => {
  const { page } = owner;
  await page.getByRole('button', { name: 'Create key' }).click();
  const form = page.getByRole('form', { name: 'Create an API key' });
  await form.getByRole('button', { name: 'Create key' }).click();
  const nameErr = form.locator('[data-error-for="name"]');
  await nameErr.getByText('Give the key a name').waitFor();
  await form.getByLabel('Name').fill('b');
  assert.equal(await nameErr.textContent(), '', 'typing a name clears the error before the next submit');
  await form.getByRole('button', { name: 'Cancel' }).click();
});

test('the form and the list show the real rate limit, and long names stay whole', async () => {
  const { page } = owner;
  await page.getByRole('button', { name: 'Create key' }).click();
  let form = page.getByRole('form', { name: 'Create an API key' });
  assert.equal(await form.getByTestId('rate-hint').textContent(), "Empty: this host's default, 600 / min.");
  assert.equal(await form.getByLabel('Rate limit (requests, optional)').getAttribute('placeholder'), '600');
  await form.getByLabel('Name').fill('billing-server');
  await form.getByLabel('api-keys:read').check();
  await form.getByRole('button', { name: 'Create key' }).click();
  const withDefault = await revealedKey(page);
  await dismissReveal(page, withDefault);

  await page.getByRole('button', { name: 'Create key' }).click();
  form = page.getByRole('form', { name: 'Create an API key' });
  await form.getByLabel('Name').fill('unlimited-worker');
  await form.getByLabel('No rate limit').check();
  assert.ok(await form.getByLabel('Rate limit (requests, optional)').isDisabled());
  await form.getByRole('button', { name: 'Create key' }).click();
  const unlimited = await revealedKey(page);
  await dismissReveal(page, unlimited);

  const byName = async (name) => (await page.evaluate(async () => (await (await fetch('/api/v2/keys')).json()).keys)).find((k) => k.name === name);
  const a = await byName('billing-server');
  const b = await byName('unlimited-worker');
  assert.deepEqual(a.rate_limit, { limit: 600, window_seconds: 60 }, 'no limit chosen: the host default');
  assert.equal(b.rate_limit, null, 'No rate limit: none');
  assert.equal(await row(page, a.id).locator('[data-rate-limit]').textContent(), '600 / min');
  assert.equal(await row(page, b.id).locator('[data-rate-limit]').textContent(), 'No limit');
  const fits = await page.locator('.ikm-scroll').evaluate((el) => el.scrollWidth <= el.clientWidth + 1);
  assert.ok(fits, 'the keys table fits its card at 1280 px');
  await shotBoth(page, 'settings-api-keys');
});

test('a used sign-in link explains itself, and the embed example works with the session', async () => {
  const { page } = owner;
  const again = await page.context().newPage();
  const res = await again.goto(env('INDIGO_LOGIN_OWNER'));
  assert.equal(res.status(), 401);
  await again.getByRole('heading', { name: 'This sign-in link can no longer be used' }).waitFor();
  await again.getByText('indigo login-link --org').waitFor();
  await shotBoth(again, 'sign-in-link-used');

  await again.goto('/ui/embed.html');
  await again.locator('indigo-api-key-manager tr[data-key-id]').first().waitFor();
  await again.getByText('Without a token, it uses your Indigo session').waitFor();
  await shotBoth(again, 'embed-with-session');
  await again.close();
});

test('state-changing requests from the cookie session need the CSRF token', async () => {
  const { page } = owner;
  const [without, withToken] = await page.evaluate(async () => {
    const post = (headers) => fetch('/api/v2/keys', { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify({ name: 'csrf', scopes: [] }) });
    const a = await post({});
    const { csrf_token } = await (await fetch('/api/session')).json();
    const b = await post({ 'X-CSRF-Token': csrf_token });
    return [{ status: a.status, body: await a.json() }, { status: b.status }];
  });
  assert.equal(without.status, 403);
  assert.equal(without.body.error.code, 'csrf_failed');
  assert.equal(withToken.status, 201);
});

test('the Account → API page uses the same manager component', async () => {
  const { page } = owner;
  await page.getByRole('link', { name: 'Account → API' }).click();
  await page.waitForURL('**/account/api');
  await page.getByRole('heading', { name: 'Your API keys' }).waitFor();
  assert.equal(await page.locator('indigo-api-key-manager').count(), 1);
  await row(page, created.first.id).waitFor();
  assert.equal(await page.getByRole('link', { name: 'Admin → Request logs' }).isVisible(), false, 'no admin pages without the operator flag');
  const status = await page.evaluate(async () => (await fetch('/api/admin/logs')).status);
  assert.equal(status, 403);
  await shotBoth(page, 'account-api');
  assert.deepEqual(owner.problems, [], 'no page or console errors (a CSP violation would be one)');
});

test('an operator filters keys and request logs across organizations', async () => {
  const op = await signIn(env('INDIGO_LOGIN_OPERATOR'));
  const { page } = op;
  await page.getByRole('link', { name: 'Admin → Request logs' }).click();
  await page.waitForURL('**/admin/logs');
  await page.locator('tr[data-log-id]').first().waitFor();
  const orgs = async () => new Set(await page.locator('tr[data-log-id]').evaluateAll((rs) => rs.map((r) => r.dataset.orgId)));
  assert.ok((await orgs()).has(ORG_A), 'unfiltered, the newest calls (org A) show');
  // At 1280 px the table fits its card and every time stays on one line.
  const fits = await page.locator('.ikm-scroll').evaluate((s) => s.scrollWidth <= s.clientWidth + 1);
  assert.ok(fits, 'the request log fits its card at 1280 px');
  await shotBoth(page, 'admin-logs');

  const form = page.getByRole('form', { name: 'Filter request logs' });
  // The dashboard's own calls (signed-in sessions, no key) can be told apart.
  await form.getByLabel('Caller').selectOption({ label: 'Signed-in sessions (the dashboard)' });
  await form.getByRole('button', { name: 'Apply filters' }).click();
  await page.waitForFunction(() => {
    const rs = [...document.querySelectorAll('tr[data-log-id]')];
    return rs.length > 0 && rs.every((r) => r.dataset.caller === 'session' && r.textContent.includes('session'));
  });
  await form.getByLabel('Caller').selectOption({ label: 'API keys' });
  await form.getByRole('button', { name: 'Apply filters' }).click();
  await page.waitForFunction(() => {
    const rs = [...document.querySelectorAll('tr[data-log-id]')];
    return rs.length > 0 && rs.every((r) => r.dataset.caller === 'key');
  });

  await form.getByLabel('Organization id').fill(ORG_B);
  await form.getByRole('button', { name: 'Apply filters' }).click();
  await page.waitForFunction((b) => {
    const rs = [...document.querySelectorAll('tr[data-log-id]')];
    return rs.length > 0 && rs.every((r) => r.dataset.orgId === b);
  }, ORG_B);
  await shot(page, 'admin-logs-org');

  await form.getByLabel('Organization id').fill(ORG_A);
  await form.getByLabel('HTTP status').fill('403');
  await form.getByRole('button', { name: 'Apply filters' }).click();
  await page.waitForFunction((a) => {
    const rs = [...document.querySelectorAll('tr[data-log-id]')];
    return rs.length > 0 && rs.every((r) => r.dataset.orgId === a && r.dataset.status === '403');
  }, ORG_A);
  assert.ok((await page.locator('tr[data-log-id]').first().textContent()).includes('/api/v2/keys'));

  await form.getByLabel('Route').fill('/api/v2/nothing-here');
  await form.getByRole('button', { name: 'Apply filters' }).click();
  await page.getByText('Nothing matches these filters.').waitFor();

  await form.getByLabel('HTTP status').fill('99');
  await form.getByRole('button', { name: 'Apply filters' }).click();
  await page.getByRole('alert').filter({ hasText: 'status must be an HTTP status code' }).waitFor();
  await shot(page, 'admin-logs-error');

  await page.getByRole('link', { name: 'Admin → API keys' }).click();
  await page.waitForURL('**/admin/api-keys');
  const kf = page.getByRole('form', { name: 'Filter keys' });
  await kf.getByLabel('Status').selectOption('revoked');
  await kf.getByRole('button', { name: 'Apply filters' }).click();
  await page.waitForFunction(() => {
    const badges = [...document.querySelectorAll('tr[data-key-id] .ikm-badge')];
    return badges.length > 0 && badges.every((b) => b.textContent === 'revoked');
  });
  await page.locator(`tr[data-key-id="${created.rolled.id}"]`).waitFor();
  await kf.getByLabel('Status').selectOption('');
  await kf.getByLabel('Organization id').fill(ORG_B);
  await kf.getByRole('button', { name: 'Apply filters' }).click();
  await page.waitForFunction((b) => {
    const rs = [...document.querySelectorAll('tr[data-key-id]')];
    return rs.length > 0 && rs.every((r) => r.dataset.orgId === b);
  }, ORG_B);
  await shotBoth(page, 'admin-api-keys');
  assert.deepEqual(op.problems, []);
  await op.ctx.close();
});

test('a member without manage rights sees no manage controls and gets 403', async () => {
  const mem = await signIn(env('INDIGO_LOGIN_MEMBER'));
  const { page } = mem;
  await page.getByTestId('no-manage').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Create key' }).count(), 0);
  assert.equal(await page.locator('tr[data-key-id]').count(), 0);
  await shotBoth(page, 'member-view');
  const res = await page.evaluate(async () => {
    const { csrf_token } = await (await fetch('/api/session')).json();
    const post = await fetch('/api/v2/keys', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf_token }, body: '{"name":"m","scopes":[]}' });
    const list = await fetch('/api/v2/keys');
    return { post: post.status, code: (await post.json()).error.code, list: list.status };
  });
  assert.deepEqual(res, { post: 403, code: 'forbidden', list: 403 });
  assert.deepEqual(mem.problems, []);
  await mem.ctx.close();
  await owner.ctx.close();
});

test('a host page embeds the manager and hands it a token from its identity provider', async () => {
  const jwtHost = env('INDIGO_JWT_URL');
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(10000);
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  const sent = [];
  page.on('request', (r) => {
    if (r.url().includes('/api/')) sent.push(r.headers().authorization || '');
  });
  await page.goto(`${jwtHost}/ui/embed.html#token=${env('INDIGO_JWT_TOKEN')}`);
  await page.getByText('No API keys yet').waitFor();
  assert.equal(new URL(page.url()).hash, '', 'the token is gone from the address bar');
  await page.getByRole('button', { name: 'Create key' }).click();
  const form = page.getByRole('form', { name: 'Create an API key' });
  await form.getByLabel('Name').fill('embedded');
  await form.getByRole('button', { name: 'Create key' }).click();
  const raw = await revealedKey(page);
  const res = await fetch(`${jwtHost}/api/v2/me`, { headers: { Authorization: `Bearer ${raw}` } });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).org_id, 'org-from-idp', 'the key belongs to the org in the token');
  assert.ok(sent.length >= 3 && sent.every((a) => a.startsWith('Bearer ey')), 'every API call carried the handed-over token');
  assert.deepEqual(await ctx.cookies(), [], 'no cookie was needed');
  await shotBoth(page, 'embedded-with-token');
  await dismissReveal(page, raw);
  assert.deepEqual(problems, []);
  await ctx.close();
});
