// Logging in with a token: the server answers with an HttpOnly session cookie, which every later call and event stream carries.

import { h } from './dom.js';

/** Where to go after logging in: a dashboard path of this server only. */
function target(query) {
  const next = query.get('next') || '/ui/runs';
  const ok = next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') && !next.startsWith('/ui/login');
  return ok ? next : '/ui/runs';
}

export function mount(main, view) {
  const { context, query } = view;
  const token = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'current-password', required: true, 'aria-describedby': 'login-error' });
  const button = h('button', { id: 'login', type: 'submit' }, 'Log in');
  const error = h('p', { id: 'login-error', class: 'error', role: 'alert', hidden: true });
  const form = h('form', { class: 'card login' },
    h('h1', null, 'Log in'),
    context.session.open
      ? h('p', { class: 'muted' }, 'This server has no tokens: everyone is an admin here, no login needed. ', h('a', { href: target(query) }, 'Go on.'))
      : h('p', { class: 'muted' }, 'This server needs a token (from its config file or DROVER_TOKENS). It stays in an HttpOnly cookie for this site only.'),
    h('label', null, h('span', null, 'Token'), token),
    h('div', { class: 'form-actions' }, button),
    error);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    button.disabled = true;
    try {
      await context.login(token.value);
      context.navigate(target(query), { replace: true });
    } catch (e) {
      error.textContent = e.status === 401 ? 'The server does not know this token.' : e.message;
      error.hidden = false;
      token.select();
    } finally {
      button.disabled = false;
    }
  });
  main.append(h('section', { class: 'page narrow' }, form));
  token.focus();
  return {};
}
