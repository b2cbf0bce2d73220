// The operator's views across organizations: <indigo-admin-keys> and
// <indigo-admin-logs>. Both read /api/admin/*, which answers only a
// signed-in user holding the operator flag; filters go into the query
// string, and pages follow the API's next_cursor.

import { ApiError, Client, fmtTime, h, uid } from './api.js';

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

  table(caption, cols, rows) {
    if (rows.length === 0) return h('p', { class: 'ikm-empty' }, 'Nothing matches these filters.');
    return h('table', { class: 'ikm-table' }, h('caption', { class: 'ikm-sr' }, caption),
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows));
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
      h('td', {}, k.name), h('td', {}, h('code', {}, k.org_id)), h('td', {}, h('code', {}, `${k.prefix}…${k.last4}`)),
      h('td', {}, h('span', { class: `ikm-badge ikm-badge-${k.status}` }, k.status)),
      h('td', {}, k.scopes === null ? 'Full access' : k.scopes.join(', ') || 'No scopes'),
      h('td', {}, fmtTime(k.created_at)), h('td', {}, k.last_used_at ? fmtTime(k.last_used_at) : 'Never')));
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
      this.field('From', h('input', { name: 'since', type: 'datetime-local' })),
      this.field('Until', h('input', { name: 'until', type: 'datetime-local' })),
      h('button', { type: 'submit', class: 'ikm-primary' }, 'Apply filters'));
  }

  render(res) {
    const rows = (res.logs || []).map((l) => h('tr', { 'data-log-id': l.id, 'data-org-id': l.org_id, 'data-status': l.status },
      h('td', {}, fmtTime(l.time)), h('td', {}, h('code', {}, l.org_id)), h('td', {}, h('code', {}, l.key_id)),
      h('td', {}, l.method), h('td', {}, h('code', {}, l.route)), h('td', {}, String(l.status)),
      h('td', {}, `${l.latency_ms.toFixed(1)} ms`), h('td', {}, h('code', {}, l.request_id))));
    this.out.replaceChildren(this.table('Requests', ['Time', 'Organization', 'Key', 'Method', 'Route', 'Status', 'Latency', 'Request id'], rows), this.pager());
  }
}

if (!customElements.get('indigo-admin-keys')) customElements.define('indigo-admin-keys', AdminKeys);
if (!customElements.get('indigo-admin-logs')) customElements.define('indigo-admin-logs', AdminLogs);
