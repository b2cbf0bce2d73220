// <indigo-api-key-manager>: the ApiKeyManager web component.
//
// It lists, creates, renames, re-scopes, disables, rolls and revokes the
// signed-in organization's API keys, and shows a key's usage, using only
// the public management API (/api/v2/keys, /api/v2/scopes, /api/session).
//
// Attributes:
//   base-url   where the host serves the API; this origin when absent
//   page-size  keys per page (default 20)
//   heading    the section heading (default "API keys")
//   auth       "token": wait for the token property instead of using the
//              session cookie (for host pages that hand over a token)
// Properties:
//   token      a bearer token from the host page's identity provider; when
//              unset the component uses the session cookie and CSRF header
// Events (bubbling, never carrying a key): key-created, key-rolled,
// key-revoked, key-updated, with detail {id, name}.
//
// The component renders into its own light DOM and styles itself with
// classes from api-key-manager.css, so a host page restyles it with CSS.
// A plaintext key lives only in the reveal panel: dismissing the panel
// removes it from the DOM and drops the last reference to it.

import { ApiError, Client, canManage, fmtLeft, fmtRate, fmtTime, h, timeCell, uid } from './api.js';

const GRACE = [
  ['0', 'End the old key now'],
  ['3600', '1 hour'],
  ['86400', '24 hours'],
  ['604800', '7 days'],
];
const EXPIRY = [
  ['', 'Never'],
  ['604800', 'In 7 days'],
  ['2592000', 'In 30 days'],
  ['7776000', 'In 90 days'],
  ['31536000', 'In 1 year'],
  ['date', 'On a date…'],
];
const COLUMNS = ['Name', 'Key', 'Scopes', 'Rate limit', 'Status', 'Last used', 'Expires', 'Actions'];
const WINDOWS = [
  ['1', 'per second'],
  ['60', 'per minute'],
  ['3600', 'per hour'],
  ['86400', 'per day'],
];
// Which form field an API error code belongs to.
const FIELD_OF = {
  invalid_name: 'name',
  unknown_scope: 'scopes',
  invalid_scopes: 'scopes',
  invalid_expiry: 'expiry',
  invalid_rate_limit: 'rate',
};

export class ApiKeyManager extends HTMLElement {
  constructor() {
    super();
    this._token = null;
    this.client = null;
    this.identity = null;
    this.groups = [];
    this.keys = [];
    this.cursors = ['']; // the cursor of each page seen, for Previous
    this.page = 0;
    this.next = null;
    this.open = null; // {id, kind} of the row panel that is open
  }

  get token() {
    return this._token;
  }

  set token(v) {
    this._token = v || null;
    if (this.isConnected) this.start();
  }

  connectedCallback() {
    // A host page may set token before this element was defined; that left
    // a plain property that hides the setter.
    if (Object.prototype.hasOwnProperty.call(this, 'token')) {
      const v = this.token;
      delete this.token;
      this._token = v || null;
    }
    if (!this.root) this.start();
  }

  get pageSize() {
    const n = parseInt(this.getAttribute('page-size') || '20', 10);
    return n > 0 && n <= 200 ? n : 20;
  }

  async start() {
    // A newer start (the token changed) makes this one stop at its next step.
    const gen = (this.gen = (this.gen || 0) + 1);
    const stale = () => gen !== this.gen;
    this.client = new Client({ baseUrl: this.getAttribute('base-url') || '', token: this._token });
    this.replaceChildren();
    this.status = h('p', { class: 'ikm-status', role: 'status', 'aria-live': 'polite' });
    this.reveal = h('div', { class: 'ikm-reveal-slot' });
    this.body = h('div', { class: 'ikm-body' });
    this.detail = h('div', { class: 'ikm-detail-slot' });
    this.root = h('section', { class: 'ikm', 'aria-labelledby': uid('ikm-h') });
    const heading = h('h2', { id: this.root.getAttribute('aria-labelledby') }, this.getAttribute('heading') || 'API keys');
    this.toolbar = h('div', { class: 'ikm-toolbar' });
    this.root.append(h('header', { class: 'ikm-head' }, heading, this.toolbar), this.status, this.reveal, this.body, this.detail);
    this.append(this.root);
    if (this.getAttribute('auth') === 'token' && !this._token) {
      this.busy('Waiting for sign-in…');
      return;
    }
    this.busy('Loading your keys…');
    try {
      this.identity = await this.client.session();
    } catch (err) {
      if (stale()) return;
      this.busy('');
      this.body.replaceChildren(h('p', { class: 'ikm-notice', role: 'alert' },
        err.status === 401 ? 'You are not signed in. Sign in to manage API keys.' : err.message));
      return;
    }
    if (stale()) return;
    if (!canManage(this.identity)) {
      this.busy('');
      this.body.replaceChildren(h('p', { class: 'ikm-notice', 'data-testid': 'no-manage' },
        'Only owners and admins of this organization manage its API keys. Ask one of them for a key.'));
      return;
    }
    this.toolbar.replaceChildren(h('button', { type: 'button', class: 'ikm-primary', onclick: () => this.showCreate() }, 'Create key'));
    try {
      const s = await this.client.request('GET', '/api/v2/scopes');
      this.groups = s.groups || [];
    } catch (err) {
      this.groups = [];
      this.flash(`Scopes could not be loaded: ${err.message}`);
    }
    if (stale()) return;
    await this.load(0);
  }

  busy(text) {
    this.status.textContent = text;
    this.root.setAttribute('aria-busy', text ? 'true' : 'false');
  }

  flash(text) {
    this.status.textContent = text;
  }

  emit(name, key) {
    this.dispatchEvent(new CustomEvent(name, { bubbles: true, detail: { id: key.id, name: key.name } }));
  }

  async load(page) {
    // Only the latest load may render (see admin.js).
    const seq = (this.seq = (this.seq || 0) + 1);
    this.busy('Loading your keys…');
    const cursor = this.cursors[page] || '';
    const q = `?limit=${this.pageSize}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : '');
    try {
      const res = await this.client.request('GET', '/api/v2/keys' + q);
      if (seq !== this.seq) return;
      this.keys = res.keys || [];
      this.next = res.next_cursor || null;
      this.page = page;
      if (this.next) this.cursors[page + 1] = this.next;
      this.busy('');
      this.renderList();
    } catch (err) {
      if (seq !== this.seq) return;
      this.busy('');
      this.body.replaceChildren(h('p', { class: 'ikm-error', role: 'alert' }, `Your keys could not be loaded: ${err.message}`));
    }
  }

  // ---- the list ----------------------------------------------------------

  renderList() {
    if (this.keys.length === 0 && this.page === 0) {
      this.body.replaceChildren(h('p', { class: 'ikm-empty' }, 'No API keys yet. Create one to call the API.'));
      return;
    }
    const table = h('table', { class: 'ikm-table ikm-cards' },
      h('caption', { class: 'ikm-sr' }, 'API keys of your organization'),
      h('thead', {}, h('tr', {}, COLUMNS.map((c) => h('th', { scope: 'col' }, c)))));
    const tbody = h('tbody');
    for (const k of this.keys) {
      tbody.append(this.row(k));
      if (this.open && this.open.id === k.id) tbody.append(this.panelRow(k));
    }
    table.append(tbody);
    const pager = h('nav', { class: 'ikm-pager', 'aria-label': 'Key pages' },
      h('button', { type: 'button', disabled: this.page === 0, onclick: () => this.load(this.page - 1) }, 'Previous page'),
      h('span', {}, `Page ${this.page + 1}`),
      h('button', { type: 'button', disabled: !this.next, onclick: () => this.load(this.page + 1) }, 'Next page'));
    this.body.replaceChildren(h('div', { class: 'ikm-scroll' }, table), pager);
  }

  row(k) {
    const live = k.status === 'active' || k.status === 'expiring';
    const nameCell = h('td', { class: 'ikm-name' });
    if (this.open && this.open.id === k.id && this.open.kind === 'rename') {
      nameCell.append(this.renameForm(k));
    } else {
      nameCell.append(h('span', { class: 'ikm-keyname', title: k.name }, k.name));
    }
    const actions = h('div', { class: 'ikm-actions' });
    const act = (label, kind, extra = {}) =>
      h('button', { type: 'button', 'aria-label': `${label} ${k.name}`, ...extra, onclick: () => this.toggle(k, kind) }, label);
    if (live) {
      actions.append(
        act('Rename', 'rename'),
        act('Scopes', 'scopes'),
        h('button', { type: 'button', 'aria-label': `${k.enabled ? 'Disable' : 'Enable'} ${k.name}`, onclick: () => this.setEnabled(k, !k.enabled) },
          k.enabled ? 'Disable' : 'Enable'),
        act('Roll', 'roll'),
        act('Revoke', 'revoke', { class: 'ikm-danger' }));
    }
    actions.append(h('button', { type: 'button', 'aria-label': `Usage of ${k.name}`, onclick: () => this.showUsage(k) }, 'Usage'));
    const cells = [
      nameCell,
      h('td', {}, h('code', { class: 'ikm-mask' }, `${k.prefix}…${k.last4}`)),
      h('td', {}, scopeChips(k.scopes)),
      h('td', { 'data-rate-limit': true, class: 'ikm-nowrap' }, fmtRate(k.rate_limit)),
      h('td', {}, statusBadges(k)),
      h('td', {}, h('div', {}, k.last_used_at ? timeCell(k.last_used_at) : 'Never'),
        h('div', { class: 'ikm-hint' }, 'created ', timeCell(k.created_at))),
      h('td', {}, k.expires_at ? timeCell(k.expires_at) : 'Never'),
      h('td', {}, actions),
    ];
    // The column name goes with each cell, for the stacked layout on narrow screens.
    cells.forEach((c, i) => c.setAttribute('data-label', COLUMNS[i]));
    return h('tr', { 'data-key-id': k.id, 'data-status': k.status }, ...cells);
  }

  toggle(k, kind) {
    this.open = this.open && this.open.id === k.id && this.open.kind === kind ? null : { id: k.id, kind };
    this.renderList();
    const focus = this.body.querySelector('[data-autofocus]');
    if (focus) focus.focus();
  }

  close() {
    this.open = null;
    this.renderList();
  }

  panelRow(k) {
    const cell = h('td', { colspan: COLUMNS.length, class: 'ikm-panel' });
    const err = h('p', { class: 'ikm-error', role: 'alert' });
    switch (this.open.kind) {
      case 'scopes':
        cell.append(this.scopesPanel(k, err));
        break;
      case 'roll':
        cell.append(this.rollPanel(k, err));
        break;
      case 'revoke':
        cell.append(this.revokePanel(k, err));
        break;
      default:
        return document.createDocumentFragment();
    }
    cell.append(err);
    return h('tr', { class: 'ikm-panel-row', 'data-panel-for': k.id }, cell);
  }

  renameForm(k) {
    const id = uid('ikm-rename');
    const input = h('input', { id, value: k.name, 'data-autofocus': true, autocomplete: 'off' });
    const err = h('span', { class: 'ikm-error', role: 'alert' });
    const form = h('form', { class: 'ikm-inline' },
      h('label', { for: id, class: 'ikm-sr' }, `New name for ${k.name}`), input,
      h('button', { type: 'submit' }, 'Save'),
      h('button', { type: 'button', onclick: () => this.close() }, 'Cancel'), err);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      await this.act(err, form, async () => {
        const res = await this.client.request('PATCH', `/api/v2/keys/${k.id}`, { name: input.value });
        this.emit('key-updated', res.key || k);
        this.flash(`Renamed to “${input.value}”.`);
      });
    });
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') this.close();
    });
    return form;
  }

  scopesPanel(k, err) {
    const picker = this.scopePicker(k.scopes, 'ikm-edit');
    const form = h('form', { class: 'ikm-form' },
      h('h3', {}, `Scopes of ${k.name}`), picker.el,
      h('div', { class: 'ikm-buttons' },
        h('button', { type: 'submit', class: 'ikm-primary' }, 'Save scopes'),
        h('button', { type: 'button', onclick: () => this.close() }, 'Cancel')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      await this.act(err, form, async () => {
        await this.client.request('PUT', `/api/v2/keys/${k.id}/scopes`, { scopes: picker.value() });
        this.emit('key-updated', k);
        this.flash(`Scopes of “${k.name}” saved.`);
      });
    });
    return form;
  }

  rollPanel(k, err) {
    const id = uid('ikm-grace');
    const grace = h('select', { id, 'data-autofocus': true }, GRACE.map(([v, l]) => h('option', { value: v, selected: v === '86400' }, l)));
    const form = h('form', { class: 'ikm-form' },
      h('h3', {}, `Roll ${k.name}`),
      h('p', {}, 'Rolling creates a new key with the same name and scopes. The old key keeps working until the grace period ends.'),
      h('label', { for: id }, 'Grace period for the old key'), grace,
      h('div', { class: 'ikm-buttons' },
        h('button', { type: 'submit', class: 'ikm-primary' }, 'Roll key'),
        h('button', { type: 'button', onclick: () => this.close() }, 'Cancel')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      await this.act(err, form, async () => {
        const res = await this.client.request('POST', `/api/v2/keys/${k.id}/roll`, { grace_seconds: parseInt(grace.value, 10) });
        const until = res.previous && res.previous.expires_at;
        this.showReveal(res.raw_key, res.key,
          until && res.previous.status === 'expiring'
            ? `The old key keeps working until ${fmtTime(until)}.`
            : 'The old key no longer works.');
        this.emit('key-rolled', res.key);
      });
    });
    return form;
  }

  revokePanel(k, err) {
    const form = h('form', { class: 'ikm-form ikm-confirm' },
      h('h3', {}, `Revoke ${k.name}?`),
      h('p', {}, 'Every request with this key is refused from now on. This cannot be undone.'),
      h('div', { class: 'ikm-buttons' },
        h('button', { type: 'submit', class: 'ikm-danger', 'data-autofocus': true }, 'Yes, revoke key'),
        h('button', { type: 'button', onclick: () => this.close() }, 'Cancel')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      await this.act(err, form, async () => {
        await this.client.request('DELETE', `/api/v2/keys/${k.id}`);
        this.emit('key-revoked', k);
        this.flash(`“${k.name}” is revoked.`);
      });
    });
    return form;
  }

  async setEnabled(k, enabled) {
    this.busy(enabled ? 'Enabling…' : 'Disabling…');
    try {
      await this.client.request('PATCH', `/api/v2/keys/${k.id}`, { enabled });
      this.emit('key-updated', k);
      this.open = null;
      await this.load(this.page);
      this.flash(`“${k.name}” is ${enabled ? 'enabled' : 'disabled'}.`);
    } catch (err) {
      this.busy('');
      this.flash(`Could not ${enabled ? 'enable' : 'disable'} “${k.name}”: ${err.message}`);
    }
  }

  // act runs a change from a form: it disables the form while the request
  // runs, shows an API error next to the form, and reloads the list after
  // success.
  async act(errEl, form, fn) {
    errEl.textContent = '';
    const controls = form.querySelectorAll('button, input, select');
    controls.forEach((c) => (c.disabled = true));
    form.setAttribute('aria-busy', 'true');
    try {
      await fn();
      this.open = null;
      const msg = this.status.textContent;
      await this.load(this.page);
      this.flash(msg);
    } catch (err) {
      controls.forEach((c) => (c.disabled = false));
      form.setAttribute('aria-busy', 'false');
      errEl.textContent = describe(err);
      if (err instanceof ApiError && err.status === 401) this.flash('Your session has ended. Sign in again.');
    }
  }

  // ---- scopes ------------------------------------------------------------

  // scopePicker builds the grouped checkboxes and the full-access choice.
  // value() is the scopes to send: null for a superkey, else the ids.
  scopePicker(current, prefix) {
    const full = current === null;
    const fullId = uid(prefix + '-full');
    const warn = h('p', { class: 'ikm-warning', hidden: !full },
      'Full access: this key can call every route of every module, including routes added later. Prefer scopes.');
    const fullBox = h('input', { type: 'checkbox', id: fullId, checked: full, 'data-full-access': true });
    const sets = h('div', { class: 'ikm-scopes' });
    const boxes = [];
    for (const g of this.groups) {
      const fs = h('fieldset', {}, h('legend', {}, g.module || 'core'));
      for (const s of g.scopes) {
        const id = uid(prefix + '-scope');
        const box = h('input', { type: 'checkbox', id, value: s.id, checked: !!current && current.includes(s.id), disabled: full });
        boxes.push(box);
        fs.append(h('div', { class: 'ikm-check' }, box, h('label', { for: id }, h('code', {}, s.id), s.label ? ` — ${s.label}` : '')));
      }
      sets.append(fs);
    }
    if (this.groups.length === 0) sets.append(h('p', {}, 'No scopes are registered.'));
    fullBox.addEventListener('change', () => {
      warn.hidden = !fullBox.checked;
      boxes.forEach((b) => (b.disabled = fullBox.checked));
    });
    const el = h('div', { class: 'ikm-picker', 'data-field': 'scopes' },
      h('div', { class: 'ikm-check ikm-full' }, fullBox, h('label', { for: fullId }, 'Full access (superkey)')), warn,
      h('p', { class: 'ikm-hint' }, 'Choose what this key may do. A key with no scopes can only call /api/v2/me.'), sets);
    return { el, value: () => (fullBox.checked ? null : boxes.filter((b) => b.checked).map((b) => b.value)) };
  }

  // ---- create ------------------------------------------------------------

  showCreate() {
    if (this.createForm && this.createForm.isConnected) {
      this.createForm.querySelector('input').focus();
      return;
    }
    const ids = { name: uid('ikm-name'), expiry: uid('ikm-expiry'), date: uid('ikm-date'), rate: uid('ikm-rate'), window: uid('ikm-window') };
    const errs = {};
    const errFor = (field) => (errs[field] = h('p', { class: 'ikm-error', role: 'alert', 'data-error-for': field }));
    const name = h('input', { id: ids.name, name: 'name', required: true, autocomplete: 'off', 'aria-describedby': ids.name + '-e' });
    const picker = this.scopePicker([], 'ikm-new');
    const expiry = h('select', { id: ids.expiry, name: 'expiry' }, EXPIRY.map(([v, l]) => h('option', { value: v }, l)));
    const date = h('input', { id: ids.date, type: 'date', name: 'expires_on' });
    const dateWrap = h('div', { hidden: true }, h('label', { for: ids.date }, 'Expiry date'), date);
    expiry.addEventListener('change', () => (dateWrap.hidden = expiry.value !== 'date'));
    // An empty rate limit gives the host's default, which the session names.
    const def = this.identity && this.identity.default_rate_limit;
    const rate = h('input', { id: ids.rate, type: 'number', min: '1', step: '1', name: 'rate_limit', placeholder: def ? String(def.limit) : 'No limit' });
    const win = h('select', { id: ids.window, name: 'window', 'aria-label': 'Rate limit window' },
      WINDOWS.map(([v, l]) => h('option', { value: v, selected: v === String(def ? def.window_seconds : 60) }, l)));
    const noLimitId = uid('ikm-nolimit');
    const noLimit = h('input', { type: 'checkbox', id: noLimitId, name: 'no_rate_limit' });
    noLimit.addEventListener('change', () => {
      rate.disabled = win.disabled = noLimit.checked;
    });
    const rateHint = h('p', { class: 'ikm-hint', 'data-testid': 'rate-hint' },
      def ? `Empty: this host's default, ${fmtRate(def)}.` : 'Empty: no limit.');
    const formErr = errFor('form');
    const nameErr = errFor('name');
    nameErr.id = ids.name + '-e';
    const form = h('form', { class: 'ikm-form ikm-create', 'aria-label': 'Create an API key', novalidate: true },
      h('h3', {}, 'Create an API key'),
      h('div', { class: 'ikm-field' }, h('label', { for: ids.name }, 'Name'), name, nameErr),
      h('div', { class: 'ikm-field' }, h('span', { class: 'ikm-label' }, 'Access'), picker.el, errFor('scopes')),
      h('div', { class: 'ikm-field' }, h('label', { for: ids.expiry }, 'Expires'), expiry, dateWrap, errFor('expiry')),
      h('div', { class: 'ikm-field' }, h('label', { for: ids.rate }, 'Rate limit (requests, optional)'),
        h('div', { class: 'ikm-inline' }, rate, win), rateHint,
        def ? h('div', { class: 'ikm-check' }, noLimit, h('label', { for: noLimitId }, 'No rate limit')) : null, errFor('rate')),
      formErr,
      h('div', { class: 'ikm-buttons' },
        h('button', { type: 'submit', class: 'ikm-primary' }, 'Create key'),
        h('button', { type: 'button', onclick: () => form.remove() }, 'Cancel')));
    form.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') form.remove();
    });
    // An error goes away as soon as its field is changed.
    const clearOn = (field, ...inputs) => inputs.forEach((i) => ['input', 'change'].forEach((t) =>
      i.addEventListener(t, () => { errs[field].textContent = ''; errs.form.textContent = ''; })));
    clearOn('name', name);
    clearOn('scopes', picker.el);
    clearOn('expiry', expiry, date);
    clearOn('rate', rate, win, noLimit);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      Object.values(errs).forEach((e) => (e.textContent = ''));
      const body = { name: name.value.trim(), scopes: picker.value() };
      if (!body.name) {
        errs.name.textContent = 'Give the key a name, such as the app or server that will use it.';
        name.focus();
        return;
      }
      if (expiry.value === 'date') {
        if (!date.value) {
          errs.expiry.textContent = 'Pick the date the key stops working.';
          return;
        }
        body.expires_at = new Date(date.value + 'T00:00:00').toISOString();
      } else if (expiry.value) {
        body.expires_in_seconds = parseInt(expiry.value, 10);
      }
      if (noLimit.checked) body.rate_limit = null;
      else if (rate.value !== '') body.rate_limit = { limit: Number(rate.value), window_seconds: parseInt(win.value, 10) };
      const controls = form.querySelectorAll('button, input, select');
      controls.forEach((c) => (c.disabled = true));
      form.setAttribute('aria-busy', 'true');
      try {
        const res = await this.client.request('POST', '/api/v2/keys', body);
        form.remove();
        this.showReveal(res.raw_key, res.key, '');
        this.emit('key-created', res.key);
        await this.load(0);
      } catch (err) {
        controls.forEach((c) => (c.disabled = false));
        picker.el.querySelector('[data-full-access]').dispatchEvent(new Event('change'));
        form.setAttribute('aria-busy', 'false');
        const field = err instanceof ApiError ? FIELD_OF[err.code] : null;
        (errs[field] || formErr).textContent = describe(err);
      }
    });
    this.body.before(form);
    name.focus();
  }

  // ---- the one-time reveal -----------------------------------------------

  showReveal(raw, key, note) {
    let secret = raw;
    const code = h('code', { class: 'ikm-secret', 'data-secret': true }, secret);
    const copied = h('span', { class: 'ikm-copied', 'aria-live': 'polite' });
    const copy = h('button', { type: 'button', class: 'ikm-primary' }, 'Copy');
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(secret);
        copied.textContent = 'Copied.';
      } catch {
        const range = document.createRange();
        range.selectNodeContents(code);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        copied.textContent = 'Press Ctrl+C (or ⌘C) to copy the selected key.';
      }
    });
    const done = h('button', { type: 'button' }, 'I have saved it');
    const panel = h('div', { class: 'ikm-reveal', role: 'region', 'aria-label': 'Your new API key' },
      h('h3', {}, `Your new key “${key.name}”`),
      h('p', { class: 'ikm-warning' }, 'Copy it now: it cannot be shown again. Store it like a password.'),
      note ? h('p', {}, note) : null,
      h('div', { class: 'ikm-inline' }, code, copy, copied), done);
    done.addEventListener('click', () => {
      secret = null;
      code.textContent = '';
      panel.remove();
      this.flash('The key is hidden. Only its last four characters are kept.');
      const b = this.toolbar.querySelector('button');
      if (b) b.focus();
    });
    this.reveal.replaceChildren(panel);
    copy.focus();
  }

  // ---- usage -------------------------------------------------------------

  async showUsage(k) {
    const wrap = h('section', { class: 'ikm-detail', 'aria-label': `Usage of ${k.name}`, 'aria-busy': 'true' },
      h('h3', {}, `Usage of ${k.name}`), h('p', { class: 'ikm-loading' }, 'Loading usage…'));
    this.detail.replaceChildren(wrap);
    let st;
    try {
      st = await this.client.request('GET', `/api/v2/keys/${k.id}/stats`);
    } catch (err) {
      wrap.replaceChildren(h('h3', {}, `Usage of ${k.name}`), h('p', { class: 'ikm-error', role: 'alert' }, describe(err)));
      return;
    }
    const close = h('button', { type: 'button', onclick: () => this.detail.replaceChildren() }, 'Close usage');
    wrap.replaceChildren(h('h3', {}, `Usage of ${k.name}`),
      h('p', {}, `${st.total} calls in all. Last used: ${st.last_used_at ? fmtTime(st.last_used_at) : 'never'}.`),
      st.by_day.length ? chart(st.by_day) : h('p', {}, 'No calls recorded yet.'),
      topRoutes(st.by_route), close);
    wrap.setAttribute('aria-busy', 'false');
  }
}

// describe turns an error into words for the user.
function describe(err) {
  if (!(err instanceof ApiError)) return 'Something went wrong. Try again.';
  switch (err.status) {
    case 401:
      return 'You are not signed in any more. Sign in again.';
    case 403:
      return `Not allowed: ${err.message}`;
    default:
      return err.message;
  }
}

function scopeChips(scopes) {
  if (scopes === null) return h('span', { class: 'ikm-chip ikm-chip-full' }, 'Full access');
  if (scopes.length === 0) return h('span', { class: 'ikm-chip ikm-chip-none' }, 'No scopes');
  return h('span', { class: 'ikm-chips' }, scopes.map((s) => h('span', { class: 'ikm-chip' }, s)));
}

function statusBadges(k) {
  const text = k.status === 'expiring' && k.expires_at ? `expiring · ${fmtLeft(k.expires_at)} left` : k.status;
  return h('span', {},
    h('span', { class: `ikm-badge ikm-badge-${k.status}`, 'data-badge': k.status }, text),
    !k.enabled && (k.status === 'active' || k.status === 'expiring') ? h('span', { class: 'ikm-badge ikm-badge-disabled', 'data-badge': 'disabled' }, 'disabled') : null);
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// chart draws calls per day as stacked bars: success, 4xx, 5xx.
function chart(days) {
  const shown = days.slice(-30);
  const W = 640, H = 180, pad = 24;
  const max = Math.max(1, ...shown.map((d) => d.count));
  const bw = Math.min(48, (W - pad * 2) / shown.length);
  // Few days are drawn in the middle, not against the left edge.
  const x0 = pad + (W - pad * 2 - bw * shown.length) / 2;
  const g = svg('g', {});
  shown.forEach((d, i) => {
    let y = H - pad;
    for (const [cls, n] of [['success', d.success], ['client', d.client_error], ['server', d.server_error]]) {
      if (!n) continue;
      const bh = ((H - pad * 2) * n) / max;
      y -= bh;
      g.append(svg('rect', { x: x0 + i * bw + 2, y, width: Math.max(1, bw - 4), height: bh, class: `ikm-bar-${cls}` },
        svg('title', {}, `${d.day}: ${n} ${cls === 'success' ? 'successful' : cls === 'client' ? 'client error (4xx)' : 'server error (5xx)'}`)));
    }
  });
  const first = shown[0].day, last = shown[shown.length - 1].day;
  const one = first === last;
  const label = one ? `Calls on ${first}: ${max}.` : `Calls per day from ${first} to ${last}; at most ${max} on one day.`;
  // One day gets one label under its bar; a range gets its two ends.
  const ticks = one
    ? [svg('text', { x: W / 2, y: H - 6, class: 'ikm-tick', 'text-anchor': 'middle' }, first)]
    : [svg('text', { x: x0, y: H - 6, class: 'ikm-tick' }, first),
      svg('text', { x: x0 + bw * shown.length, y: H - 6, class: 'ikm-tick', 'text-anchor': 'end' }, last)];
  const pic = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, class: 'ikm-chart' },
    svg('line', { x1: pad, y1: H - pad, x2: W - pad, y2: H - pad, class: 'ikm-axis' }),
    ...ticks,
    svg('text', { x: pad, y: 14, class: 'ikm-tick' }, `max ${max}/day`), g);
  const legend = h('p', { class: 'ikm-legend' },
    h('span', { class: 'ikm-key ikm-key-success' }, 'success'),
    h('span', { class: 'ikm-key ikm-key-client' }, 'client errors (4xx)'),
    h('span', { class: 'ikm-key ikm-key-server' }, 'server errors (5xx)'));
  const table = h('table', { class: 'ikm-sr' }, h('caption', {}, 'Calls per day'),
    h('tr', {}, ['Day', 'Success', '4xx', '5xx'].map((c) => h('th', { scope: 'col' }, c))),
    shown.map((d) => h('tr', {}, h('td', {}, d.day), h('td', {}, d.success), h('td', {}, d.client_error), h('td', {}, d.server_error))));
  return h('figure', { class: 'ikm-figure', 'data-testid': 'usage-chart' }, pic, legend, table);
}

// topRoutes sums the route × status counts by route and lists the busiest.
function topRoutes(byRoute) {
  const sums = new Map();
  for (const r of byRoute) {
    const s = sums.get(r.route) || { route: r.route, total: 0, errors: 0 };
    s.total += r.count;
    if (r.status >= 400) s.errors += r.count;
    sums.set(r.route, s);
  }
  const top = [...sums.values()].sort((a, b) => b.total - a.total || a.route.localeCompare(b.route)).slice(0, 5);
  if (top.length === 0) return null;
  return h('table', { class: 'ikm-table ikm-top', 'data-testid': 'top-routes' },
    h('caption', {}, 'Top routes'),
    h('thead', {}, h('tr', {}, ['Route', 'Calls', 'Errors'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, top.map((r) => h('tr', {}, h('td', {}, h('code', {}, r.route)), h('td', {}, r.total), h('td', {}, r.errors)))));
}

if (!customElements.get('indigo-api-key-manager')) customElements.define('indigo-api-key-manager', ApiKeyManager);
