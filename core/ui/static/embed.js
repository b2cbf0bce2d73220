// The example host page's script (see embed.html). With #token=… it hands
// the token to the component and forgets it from the address bar; without
// one the component uses the Indigo session cookie (local sign-in).
import './api-key-manager.js';

const params = new URLSearchParams(location.hash.slice(1));
const token = params.get('token');
const manager = document.createElement('indigo-api-key-manager');
manager.id = 'manager';
manager.setAttribute('heading', 'API keys');
if (token) {
  history.replaceState(null, '', location.pathname);
  manager.setAttribute('auth', 'token');
  manager.token = token;
}
document.getElementById('embed-slot').append(manager);
