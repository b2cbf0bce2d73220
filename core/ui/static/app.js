// The dashboard shell: who is signed in, the navigation, and which page
// component to show for the current address. Each page is a component that
// a host application can also place in its own pages.

import { Client, h } from './api.js';
import './api-key-manager.js';
import './admin.js';

const PAGES = {
  '/settings/api-keys': {
    title: 'Settings → API Keys',
    build: () => [
      h('p', { class: 'app-lead' }, 'Keys let your servers and scripts call the API for this organization. Give each app its own key with only the scopes it needs.'),
      h('indigo-api-key-manager', { heading: 'API keys' }),
    ],
  },
  '/account/api': {
    title: 'Account → API',
    build: () => [
      h('p', { class: 'app-lead' }, 'Call the API at ', h('code', {}, `${location.origin}/api/v2/`), ' with ', h('code', {}, 'Authorization: Bearer <key>'),
        '. The routes and scopes are described in the ', h('a', { href: '/api/openapi.json' }, 'OpenAPI document'), '.'),
      h('pre', { class: 'app-example' }, `curl -H "Authorization: Bearer $INDIGO_KEY" ${location.origin}/api/v2/me`),
      h('indigo-api-key-manager', { heading: 'Your API keys', 'page-size': '10' }),
    ],
  },
  '/admin/api-keys': { title: 'Admin → API keys', operator: true, build: () => [h('indigo-admin-keys')] },
  '/admin/logs': { title: 'Admin → Request logs', operator: true, build: () => [h('indigo-admin-logs')] },
};

async function main() {
  const main = document.getElementById('main');
  const client = new Client();
  let id;
  try {
    id = await client.session();
  } catch (err) {
    main.replaceChildren(h('h1', {}, 'Indigo'),
      err.status === 401
        ? h('p', { role: 'alert' }, 'You are not signed in. Run ', h('code', {}, 'indigo login-link --org <org id>'), ' and open the link it prints, or sign in through your identity provider.')
        : h('p', { role: 'alert' }, `The server could not be reached: ${err.message}`));
    return;
  }
  let path = location.pathname;
  if (!PAGES[path]) {
    path = '/settings/api-keys';
    history.replaceState(null, '', path);
  }
  const nav = document.querySelector('.app-nav');
  nav.hidden = false;
  for (const a of nav.querySelectorAll('a')) {
    if (a.hasAttribute('data-operator')) a.hidden = !id.operator;
    if (a.getAttribute('href') === path) a.setAttribute('aria-current', 'page');
  }
  const org = document.querySelector('.app-org');
  org.textContent = id.org_name || id.org_id;
  org.title = `Organization id: ${id.org_id}`;
  org.hidden = false;
  document.querySelector('.app-who').textContent = `${id.email || id.user_id} · ${id.role}${id.operator ? ' · operator' : ''}`;
  const out = document.querySelector('.app-signout');
  out.hidden = false;
  out.addEventListener('click', async () => {
    try {
      await client.request('POST', '/auth/logout');
    } finally {
      location.assign('/');
    }
  });
  const page = PAGES[path];
  document.title = `${page.title} · Indigo`;
  if (page.operator && !id.operator) {
    main.replaceChildren(h('h1', {}, page.title), h('p', { role: 'alert' }, 'This page is for operators of this Indigo host.'));
    return;
  }
  main.replaceChildren(h('h1', {}, page.title), ...page.build());
}

main();
