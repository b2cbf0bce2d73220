// The example host page's script (see embed.html): hand the token to the
// component, then forget it from the address bar.
import './api-key-manager.js';

const params = new URLSearchParams(location.hash.slice(1));
const token = params.get('token');
if (token) {
  history.replaceState(null, '', location.pathname);
  document.getElementById('manager').token = token;
}
