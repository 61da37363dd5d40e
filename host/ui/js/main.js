// The dashboard's entry: the session, the navigation bar and the routes to each page.

import { api, onUnauthorized } from './api.js';
import { h, setText } from './dom.js';
import { allows } from './format.js';
import { Router } from './router.js';
import * as runs from './runs.js';
import * as run from './run.js';
import * as drivers from './drivers.js';
import * as drones from './drones.js';
import * as submit from './submit.js';
import * as login from './login.js';

const LOGIN = '/ui/login';

/** Who the browser is to the server: `open` when it has no tokens (everyone is admin). */
const session = { open: false, role: null, known: false };

async function loadSession() {
  try {
    const answer = await api('/api/v1/session', { quiet401: true });
    session.open = Boolean(answer?.open);
    session.role = answer?.role ?? (session.open ? 'admin' : null);
  } catch (error) {
    if (error.status === 404) {
      // A server without sessions: it has no tokens or takes only bearer headers; the API says which on the first call.
      session.open = true;
      session.role = 'admin';
    } else {
      throw error;
    }
  }
  session.known = true;
  showSession();
}

function showSession() {
  const role = document.getElementById('role');
  setText(role, session.role || '');
  role.dataset.role = session.role || '';
  setText(document.getElementById('role-note'), session.open ? 'no tokens' : session.role ? '' : 'not logged in');
  document.getElementById('logout').hidden = session.open || !session.role;
}

const notFound = {
  mount(main) {
    main.append(
      h('section', { class: 'page narrow' },
        h('h1', null, 'No such page'),
        h('p', null, 'The dashboard has no page at ', h('code', null, location.pathname), '. ',
          h('a', { href: '/ui/runs' }, 'See the runs.'))),
    );
    return {};
  },
};

const context = {
  session,
  notFound,
  /** Whether the session's role may do what needs `needed`. */
  can: (needed) => allows(session.role, needed),
  navigate: (url, options) => router.navigate(url, options),
  async login(token) {
    await api('/api/v1/session', { method: 'POST', body: { token }, quiet401: true });
    await loadSession();
  },
};

const router = new Router(document.getElementById('main'), [
  [/^\/$/, runs],
  [/^\/ui\/?$/, runs],
  [/^\/ui\/runs\/?$/, runs],
  [/^\/ui\/runs\/([^/]+)\/?$/, run],
  [/^\/ui\/drivers\/?$/, drivers],
  [/^\/ui\/drones\/?$/, drones],
  [/^\/ui\/submit\/?$/, submit],
  [/^\/ui\/login\/?$/, login],
], context);

router.before = (path) => {
  const atLogin = path === LOGIN || path.startsWith(`${LOGIN}?`) || path.startsWith(`${LOGIN}/`);
  if (session.open || session.role || atLogin) return null;
  return `${LOGIN}?next=${encodeURIComponent(path)}`;
};

router.after = (path) => {
  const section = path === '/' || path === '/ui' || path === '/ui/' ? 'runs' : path.split('/')[2] || 'runs';
  // A run's page names itself once its record is in.
  if (!/^\/ui\/runs\/[^/]+/.test(path)) document.title = `${section} · drover`;
  for (const link of document.querySelectorAll('a[data-nav]')) {
    if (link.dataset.nav === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
};

onUnauthorized(() => {
  if (location.pathname.startsWith(LOGIN)) return;
  session.role = null;
  session.open = false;
  showSession();
  router.navigate(`${LOGIN}?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
});

document.getElementById('logout').addEventListener('click', async () => {
  try {
    await api('/api/v1/session', { method: 'DELETE', quiet401: true });
  } catch (error) {
    // The cookie is gone either way once the server forgets it; say so only if it did not.
    if (error.status !== 401) {
      alert(`Logging out failed: ${error.message}`);
      return;
    }
  }
  session.role = null;
  showSession();
  router.navigate(LOGIN);
});

async function start() {
  try {
    await loadSession();
  } catch (error) {
    document.getElementById('main').replaceChildren(
      h('section', { class: 'page narrow' },
        h('h1', null, 'The server did not answer'),
        h('p', { class: 'error' }, error.message),
        h('button', { type: 'button', onclick: () => location.reload() }, 'Try again')),
    );
    return;
  }
  router.render();
}

start();
