// Create and edit forms, with client-side validation that mirrors the
// server's; after a create the new token's plaintext is shown once.
import { h, replace } from '../dom.js';
import { isoDate } from '../format.js';
import { validateToken, serverField, limits } from '../validate.js';
import { errorBox, field, loading, secretPanel } from '../ui.js';

const LABELS = { name: 'Name', description: 'Description', rateLimit: 'Rate limit', expires: 'Expires', endpoints: 'Allowed endpoints' };

function tokenForm({ original, submitText, onSubmit, cancelHref }) {
  const f = {
    name: field({
      id: 'tf-name', label: LABELS.name, required: true,
      hint: `What the token is for, e.g. “WordPress Plugin - Main Site”. At most ${limits.name} characters.`,
      control: h('input', { type: 'text', maxlength: String(limits.name), autocomplete: 'off', required: true }),
    }),
    description: field({
      id: 'tf-description', label: LABELS.description,
      control: h('textarea', { rows: '2', maxlength: String(limits.description) }),
    }),
    rateLimit: field({
      id: 'tf-rate-limit', label: LABELS.rateLimit,
      hint: original ? 'Requests per minute; 0 is unlimited.' : 'Requests per minute; 0 is unlimited. Empty: the server’s default (100).',
      control: h('input', { type: 'number', min: '0', max: String(limits.rateLimit), step: '1', inputmode: 'numeric', placeholder: original ? null : '100' }),
    }),
    expires: field({
      id: 'tf-expires', label: LABELS.expires,
      hint: 'The token stops working at 00:00 UTC of this day. Empty: never.',
      control: h('input', { type: 'date', min: new Date(Date.now() + 86400000).toISOString().slice(0, 10) }),
    }),
    endpoints: field({
      id: 'tf-endpoints', label: LABELS.endpoints,
      hint: 'One pattern per line, relative to the API’s base path: /products* (products and everything below), /stores/*/brands (one segment), GET /orders (one method). Empty: every endpoint.',
      control: h('textarea', { rows: '4', spellcheck: 'false', class: 'mono', placeholder: '/products*\n/stores*\n/categories*' }),
    }),
  };
  if (original) {
    f.name.control.value = original.name;
    f.description.control.value = original.description || '';
    f.rateLimit.control.value = String(original.rate_limit);
    f.expires.control.value = isoDate(original.expires_at);
    f.endpoints.control.value = (original.allowed_endpoints || []).join('\n');
  }
  const summary = h('div', { class: 'notice error', role: 'alert', hidden: true, tabindex: '-1' });
  const submit = h('button', { type: 'submit', class: 'button primary' }, submitText);
  const form = h('form', { class: 'token-form card', novalidate: true },
    summary,
    Object.values(f).map((x) => x.wrap),
    h('div', { class: 'actions' }, h('a', { class: 'button', href: cancelHref }, 'Cancel'), submit));

  const showErrors = (errors, general) => {
    for (const [k, x] of Object.entries(f)) x.setError(errors[k] || '');
    const keys = Object.keys(errors).filter((k) => f[k]);
    if (!keys.length && !general) {
      summary.hidden = true;
      return;
    }
    replace(summary,
      h('p', null, general || (keys.length === 1 ? 'Please correct this field:' : 'Please correct these fields:')),
      keys.length ? h('ul', null, keys.map((k) => h('li', null, h('a', { href: `#${f[k].control.id}`, onclick: (e) => { e.preventDefault(); f[k].control.focus(); } }, `${LABELS[k]}: ${errors[k]}`)))) : null);
    summary.hidden = false;
    if (keys.length) f[keys[0]].control.focus();
    else summary.focus();
  };
  // Errors clear as the field is corrected.
  for (const x of Object.values(f)) x.control.addEventListener('input', () => x.setError(''));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const values = {
      name: f.name.control.value,
      description: f.description.control.value,
      rateLimit: f.rateLimit.control.value,
      expires: f.expires.control.value,
      endpoints: f.endpoints.control.value,
    };
    // A number input reports "" for text it cannot parse.
    if (values.rateLimit === '' && f.rateLimit.control.validity.badInput) values.rateLimit = 'x';
    const { errors, body } = validateToken(values, { original });
    if (Object.keys(errors).length) {
      showErrors(errors);
      return;
    }
    submit.disabled = true;
    form.setAttribute('aria-busy', 'true');
    try {
      await onSubmit(body);
    } catch (err) {
      if (err.name === 'AbortError') return;
      const k = err.status === 400 ? serverField(err.message) : '';
      if (k) showErrors({ [k]: `${err.message}.` }, 'The server refused the token:');
      else showErrors({}, `The server refused the request: ${err.message}`);
    } finally {
      submit.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });
  return { form, focus: () => f.name.control.focus() };
}

export function createView(ctx) {
  ctx.setTitle('New token');
  const box = h('div');
  ctx.main.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/tokens' }, '← Tokens')),
    h('h1', { tabindex: '-1' }, 'New token'),
    box);
  const { form } = tokenForm({
    submitText: 'Create token',
    cancelHref: '#/tokens',
    onSubmit: async (body) => {
      const res = await ctx.api('POST', '', { body, signal: ctx.signal });
      // The plaintext lives only in this panel.
      replace(box, secretPanel({
        token: res.token,
        message: res.message,
        heading: `Token “${res.token.name}” created`,
        onDone: () => ctx.go(`#/tokens/${res.token.id}`),
      }));
      ctx.announce(`Token “${res.token.name}” created. Copy it now: it is shown only once.`);
      document.getElementById('one-time-token')?.focus();
    },
  });
  box.append(form);
}

export function editView(ctx, id) {
  ctx.setTitle('Edit token');
  const box = h('div', null, loading());
  const heading = h('h1', { tabindex: '-1' }, 'Edit token');
  ctx.main.append(h('p', { class: 'crumbs' }, h('a', { href: `#/tokens/${id}` }, '← Token')), heading, box);
  ctx.api('GET', `/${id}`, { signal: ctx.signal }).then(({ token }) => {
    heading.textContent = `Edit “${token.name}”`;
    ctx.setTitle(`Edit ${token.name}`);
    const { form } = tokenForm({
      original: token,
      submitText: 'Save changes',
      cancelHref: `#/tokens/${id}`,
      onSubmit: async (body) => {
        if (!Object.keys(body).length) {
          ctx.announce('Nothing changed.');
          ctx.go(`#/tokens/${id}`);
          return;
        }
        const res = await ctx.api('PATCH', `/${id}`, { body, signal: ctx.signal });
        ctx.announce(`Token “${res.token.name}” saved.`);
        ctx.go(`#/tokens/${id}`);
      },
    });
    replace(box, form);
  }).catch((err) => {
    if (err.name !== 'AbortError') replace(box, errorBox(err));
  });
}
