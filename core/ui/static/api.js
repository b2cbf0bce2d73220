// A small client for Indigo's management API, shared by the components.
// It speaks JSON, turns every error answer into an ApiError with the API's
// code and message, and adds the CSRF header to state-changing requests
// made with the session cookie. Nothing it learns is written to storage.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export class Client {
  // baseUrl: where the host serves the API ('' for this origin).
  // token: a bearer token handed over by the host page (a JWT from the
  // host's identity provider); without it the session cookie is used.
  constructor({ baseUrl = '', token = null } = {}) {
    this.baseUrl = baseUrl.replace(/\/$/, '');
    this.token = token;
    this.csrf = '';
    this.identity = null;
  }

  async session() {
    const id = await this.request('GET', '/api/session');
    this.identity = id;
    this.csrf = id.csrf_token || '';
    return id;
  }

  async request(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (method !== 'GET' && method !== 'HEAD' && this.csrf) headers['X-CSRF-Token'] = this.csrf;
    const init = { method, headers, credentials: 'same-origin' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(this.baseUrl + path, init);
    } catch (err) {
      throw new ApiError(0, 'network_error', 'The server could not be reached. Check your connection and try again.');
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!res.ok) {
      const e = data && data.error;
      throw new ApiError(res.status, e?.code || 'http_' + res.status, e?.message || `The server answered ${res.status}.`);
    }
    return data;
  }
}

// canManage reports whether a signed-in identity may manage keys.
export function canManage(id) {
  return !!id && (id.role === 'owner' || id.role === 'admin');
}

// h builds an element. Attributes starting with "on" are listeners; text
// children become text nodes, so nothing is ever parsed as HTML.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// fmtTime writes a time compactly (the year only when it is not this
// year's); timeCell puts it in a <time> element with the full time as a
// tooltip, for tables.
export function fmtTime(t) {
  if (!t) return '—';
  const d = new Date(t);
  const opts = { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' };
  if (d.getFullYear() !== new Date().getFullYear()) opts.year = 'numeric';
  return d.toLocaleString(undefined, opts);
}

export function timeCell(t) {
  if (!t) return h('span', { class: 'ikm-time' }, '—');
  return h('time', { class: 'ikm-time', datetime: t, title: new Date(t).toString() }, fmtTime(t));
}

// fmtRate writes a rate limit as "600 / min", or "No limit" for null.
export function fmtRate(rl) {
  if (!rl) return 'No limit';
  const unit = { 1: 's', 60: 'min', 3600: 'h', 86400: 'day' }[rl.window_seconds] || `${rl.window_seconds} s`;
  return `${rl.limit.toLocaleString()} / ${unit}`;
}

// idText shows a long id shortened on screen; the whole id stays in the
// text (copying it copies all of it) and in the tooltip.
export function idText(id) {
  return h('code', { class: 'ikm-id', title: id }, id);
}

// fmtLeft says how long until t, in the largest whole unit.
export function fmtLeft(t, now = Date.now()) {
  const ms = new Date(t).getTime() - now;
  if (ms <= 0) return 'now';
  const min = Math.floor(ms / 60000);
  if (min < 1) return 'less than a minute';
  if (min < 60) return `${min} min`;
  const hours = Math.floor(min / 60);
  if (hours < 48) return `${hours} h`;
  return `${Math.floor(hours / 24)} days`;
}

let seq = 0;
export function uid(prefix) {
  seq += 1;
  return `${prefix}-${seq}`;
}
