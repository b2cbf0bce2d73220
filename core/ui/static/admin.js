// The operator's views across organizations: <indigo-admin-keys> and
// <indigo-admin-logs>. Both read /api/admin/*, which answers only a
// signed-in user holding the operator flag; filters go into the query
// string, and pages follow the API's next_cursor.

import { ApiError, Client, h, idText, timeCell, uid } from './api.js';

class AdminTable extends HTMLElement {
  connectedCallback() {
    if (this.started) return;
    this.started = true;
    this.client = new Client({ baseUrl: this.getAttribute('base-url') || '', token: this.token || null });
    this.cursors = [''];
    this.page = 0;
    this.status = h('p', { class: 'ikm-status', role: 'status', 'aria-live': 'polite' });
    this.out = h('div', { class: 'ikm-body' });
    this.err = h('p', { class: 'ikm-error', role: 'alert' });
    const form = this.filterForm();
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.cursors = [''];
      this.load(0);
    });
    this.append(h('section', { class: 'ikm' }, h('h2', {}, this.title), form, this.err, this.status, this.out));
    this.load(0);
  }

  field(label, input) {
    const id = uid('adm');
    input.id = id;
    this.inputs = this.inputs || {};
    this.inputs[input.name] = input;
    return h('div', { class: 'ikm-field' }, h('label', { for: id }, label), input);
  }

  params() {
    const q = new URLSearchParams();
    for (const [name, input] of Object.entries(this.inputs)) {
      let v = input.value.trim();
      if (!v) continue;
      if (input.type === 'datetime-local') v = new Date(v).toISOString();
      q.set(name, v);
    }
    q.set('limit', this.getAttribute('page-size') || '25');
    return q;
  }

  async load(page) {
    // Only the latest load may render: an earlier, slower answer (the
    // unfiltered first page, say) must not replace a filtered one.
    const seq = (this.seq = (this.seq || 0) + 1);
    this.err.textContent = '';
    this.status.textContent = 'Loading…';
    this.setAttribute('aria-busy', 'true');
    const q = this.params();
    if (this.cursors[page]) q.set('cursor', this.cursors[page]);
    try {
      const res = await this.client.request('GET', `${this.endpoint}?${q}`);
      if (seq !== this.seq) return;
      this.page = page;
      this.next = res.next_cursor || null;
      if (this.next) this.cursors[page + 1] = this.next;
      this.render(res);
      this.status.textContent = '';
    } catch (err) {
      if (seq !== this.seq) return;
      this.status.textContent = '';
      this.err.textContent = err instanceof ApiError ? err.message : 'Something went wrong. Try again.';
    }
    this.setAttribute('aria-busy', 'false');
  }

  pager() {
    return h('nav', { class: 'ikm-pager', 'aria-label': `${this.title} pages` },
      h('button', { type: 'button', disabled: this.page === 0, onclick: () => this.load(this.page - 1) }, 'Previous page'),
      h('span', {}, `Page ${this.page + 1}`),
      h('button', { type: 'button', disabled: !this.next, onclick: () => this.load(this.page + 1) }, 'Next page'));
  }

  // table lays out rows of cells under cols; each cell carries its column
  // name for the stacked layout on narrow screens.
  table(caption, cols, rows) {
    if (rows.length === 0) return h('p', { class: 'ikm-empty' }, 'Nothing matches these filters.');
    for (const r of rows) [...r.children].forEach((c, i) => c.setAttribute('data-label', cols[i]));
    return h('div', { class: 'ikm-scroll' }, h('table', { class: 'ikm-table ikm-cards' }, h('caption', { class: 'ikm-sr' }, caption),
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows)));
  }
}

class AdminKeys extends AdminTable {
  get title() {
    return 'API keys across organizations';
  }

  get endpoint() {
    return '/api/admin/keys';
  }

  filterForm() {
    const status = h('select', { name: 'status' },
      ['', 'active', 'expiring', 'expired', 'revoked'].map((s) => h('option', { value: s }, s || 'Any status')));
    return h('form', { class: 'ikm-filters', 'aria-label': 'Filter keys', novalidate: true },
      this.field('Organization id', h('input', { name: 'org_id', autocomplete: 'off' })),
      this.field('Status', status),
      h('button', { type: 'submit', class: 'ikm-primary' }, 'Apply filters'));
  }

  render(res) {
    const rows = (res.keys || []).map((k) => h('tr', { 'data-key-id': k.id, 'data-org-id': k.org_id },
      h('td', {}, h('span', { class: 'ikm-keyname', title: k.name }, k.name)), h('td', {}, idText(k.org_id)),
      h('td', {}, h('code', { class: 'ikm-mask' }, `${k.prefix}…${k.last4}`)),
      h('td', {}, h('span', { class: `ikm-badge ikm-badge-${k.status}` }, k.status)),
      h('td', {}, k.scopes === null ? h('span', { class: 'ikm-chip ikm-chip-full' }, 'Full access')
        : k.scopes.length ? h('span', { class: 'ikm-chips' }, k.scopes.map((sc) => h('span', { class: 'ikm-chip' }, sc)))
          : h('span', { class: 'ikm-chip ikm-chip-none' }, 'No scopes')),
      h('td', {}, timeCell(k.created_at)), h('td', {}, k.last_used_at ? timeCell(k.last_used_at) : 'Never')));
    this.out.replaceChildren(this.table('Keys', ['Name', 'Organization', 'Key', 'Status', 'Scopes', 'Created', 'Last used'], rows), this.pager());
  }
}

class AdminLogs extends AdminTable {
  get title() {
    return 'Request logs';
  }

  get endpoint() {
    return '/api/admin/logs';
  }

  filterForm() {
    return h('form', { class: 'ikm-filters', 'aria-label': 'Filter request logs', novalidate: true },
      this.field('Organization id', h('input', { name: 'org_id', autocomplete: 'off' })),
      this.field('Key id', h('input', { name: 'key_id', autocomplete: 'off' })),
      this.field('Route', h('input', { name: 'route', autocomplete: 'off', placeholder: '/api/v2/me' })),
      this.field('HTTP status', h('input', { name: 'status', type: 'number', min: '100', max: '599' })),
      this.field('Caller', h('select', { name: 'caller' },
        [['', 'Any caller'], ['key', 'API keys'], ['session', 'Signed-in sessions (the dashboard)']].map(([v, l]) => h('option', { value: v }, l)))),
      this.field('From', h('input', { name: 'since', type: 'datetime-local' })),
      this.field('Until', h('input', { name: 'until', type: 'datetime-local' })),
      h('button', { type: 'submit', class: 'ikm-primary' }, 'Apply filters'));
  }

  render(res) {
    // A call without a key came from a signed-in person (the dashboard).
    const rows = (res.logs || []).map((l) => h('tr', { 'data-log-id': l.id, 'data-org-id': l.org_id, 'data-status': l.status, 'data-caller': l.caller },
      h('td', {}, timeCell(l.time)), h('td', {}, idText(l.org_id)),
      h('td', {}, l.caller === 'session' ? h('span', { class: 'ikm-badge ikm-badge-session' }, 'session') : idText(l.key_id)),
      h('td', { class: 'ikm-nowrap' }, `${l.method} `, h('code', {}, l.route)), h('td', {}, String(l.status)),
      h('td', { class: 'ikm-nowrap' }, `${l.latency_ms.toFixed(1)} ms`), h('td', {}, idText(l.request_id))));
    this.out.replaceChildren(this.table('Requests', ['Time', 'Organization', 'Caller', 'Request', 'Status', 'Latency', 'Request id'], rows), this.pager());
  }
}

if (!customElements.get('indigo-admin-keys')) customElements.define('indigo-admin-keys', AdminKeys);
if (!customElements.get('indigo-admin-logs')) customElements.define('indigo-admin-logs', AdminLogs);
