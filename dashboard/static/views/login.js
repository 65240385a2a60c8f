// Sign-in: the admin secret is checked with one request and then kept in
// sessionStorage (this tab only) by the caller.
import { h } from '../dom.js';
import { createApi } from '../api.js';

export function loginView(ctx, { apiBase, flash, onSignedIn }) {
  ctx.setTitle('Sign in');
  const input = h('input', { type: 'password', id: 'admin-secret', name: 'secret', autocomplete: 'current-password', required: true, 'aria-describedby': 'admin-secret-hint login-error', spellcheck: 'false' });
  const msg = h('div', { id: 'login-error', class: 'notice error', role: 'alert', hidden: !flash }, flash || '');
  const submit = h('button', { type: 'submit', class: 'button primary' }, 'Sign in');
  const show = (text) => {
    msg.textContent = text;
    msg.hidden = !text;
    if (text) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  };
  const form = h('form', { class: 'login-form', novalidate: true },
    h('div', { class: 'field' },
      h('label', { for: 'admin-secret' }, 'Admin secret'),
      h('p', { class: 'hint', id: 'admin-secret-hint' },
        'The secret that authorizes this service’s admin API. It is kept in this browser tab only and sent with each request as a Bearer token.'),
      input),
    msg,
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const secret = input.value.trim();
    if (!secret) {
      show('Enter the admin secret.');
      input.focus();
      return;
    }
    submit.disabled = true;
    form.setAttribute('aria-busy', 'true');
    show('');
    try {
      await createApi(apiBase, secret, null)('GET', '', { query: { limit: 1 } });
      onSignedIn(secret);
    } catch (err) {
      if (err.status === 401) {
        show('Wrong admin secret: the admin API refused it (401). Check it and try again.');
      } else if (err.status === 404) {
        show(`There is no admin API at ${apiBase} (404). The dashboard’s API base may be wrong.`);
      } else {
        show(`Could not sign in: ${err.message}`);
      }
      input.focus();
      input.select();
    } finally {
      submit.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });
  ctx.main.append(h('section', { class: 'card login' },
    h('h1', { tabindex: '-1' }, 'Sign in'),
    form));
  input.focus();
}
