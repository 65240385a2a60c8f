// Widgets the views share.
import { h, uid } from './dom.js';
import { status as tokenStatus } from './format.js';

const STATUS_TEXT = { active: 'Active', disabled: 'Disabled', expired: 'Expired' };

export function badge(token) {
  const st = tokenStatus(token);
  return h('span', { class: `badge badge-${st}` }, STATUS_TEXT[st]);
}

export function errorBox(err) {
  const msg = err && err.message ? err.message : String(err);
  return h('div', { class: 'notice error', role: 'alert' }, msg);
}

export function loading(what = 'Loading…') {
  return h('p', { class: 'muted loading' }, what);
}

// field returns a labelled form control with a hint and an error message
// slot, wired with aria-describedby and aria-invalid.
export function field({ id, label, hint, control, required }) {
  const hintId = hint ? `${id}-hint` : null;
  const errId = `${id}-error`;
  control.id = id;
  control.setAttribute('aria-describedby', [hintId, errId].filter(Boolean).join(' '));
  if (required) control.setAttribute('aria-required', 'true');
  const err = h('p', { class: 'field-error', id: errId, hidden: true });
  const wrap = h('div', { class: 'field' },
    h('label', { for: id }, label, required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null),
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null,
    control,
    err);
  return {
    wrap,
    control,
    setError(msg) {
      err.textContent = msg || '';
      err.hidden = !msg;
      if (msg) control.setAttribute('aria-invalid', 'true');
      else control.removeAttribute('aria-invalid');
    },
  };
}

// rangePicker is a group of radio buttons for 1, 7 or 30 days.
export function rangePicker(days, onChange) {
  const name = uid('range');
  const opts = [[1, '24 hours'], [7, '7 days'], [30, '30 days']];
  return h('fieldset', { class: 'range' },
    h('legend', null, 'Range'),
    opts.map(([d, text]) => {
      const id = `${name}-${d}`;
      const input = h('input', { type: 'radio', name, id, value: String(d), checked: d === days });
      input.addEventListener('change', () => input.checked && onChange(d));
      return h('span', { class: 'range-opt' }, input, h('label', { for: id }, text));
    }));
}

// switchButton is an on/off button (role=switch) for a token's active flag.
// onToggle(next) returns a promise; the switch is busy until it settles.
export function switchButton(active, name, onToggle) {
  const btn = h('button', { type: 'button', role: 'switch', class: 'switch', 'aria-label': `Active: ${name}` },
    h('span', { class: 'switch-track', 'aria-hidden': 'true' }, h('span', { class: 'switch-thumb' })),
    h('span', { class: 'switch-text', 'aria-hidden': 'true' }));
  const set = (on) => {
    btn.setAttribute('aria-checked', String(on));
    btn.lastChild.textContent = on ? 'Enabled' : 'Disabled';
  };
  set(active);
  btn.addEventListener('click', async () => {
    const next = btn.getAttribute('aria-checked') !== 'true';
    btn.disabled = true;
    btn.setAttribute('aria-busy', 'true');
    try {
      const ok = await onToggle(next);
      if (ok !== false) set(next);
    } finally {
      btn.disabled = false;
      btn.removeAttribute('aria-busy');
      btn.focus();
    }
  });
  return btn;
}

// confirmDialog shows a modal dialog and resolves to the value of extra
// controls (via collect) when confirmed, or null when cancelled.
export function confirmDialog({ title, body, confirmText, danger = false, collect = () => true }) {
  return new Promise((resolve) => {
    const titleId = uid('dlg-title');
    const cancel = h('button', { type: 'button', class: 'button' }, 'Cancel');
    const ok = h('button', { type: 'button', class: danger ? 'button danger' : 'button primary' }, confirmText);
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': titleId },
      h('h2', { id: titleId }, title),
      body,
      h('div', { class: 'actions' }, cancel, ok));
    let result = null;
    cancel.addEventListener('click', () => dlg.close());
    ok.addEventListener('click', () => {
      result = collect();
      dlg.close();
    });
    dlg.addEventListener('close', () => {
      dlg.remove();
      resolve(result);
    });
    document.body.append(dlg);
    dlg.showModal();
    cancel.focus();
  });
}

// secretPanel shows a token's plaintext, once, with a copy button and the
// spec's warning. onDone is called when the administrator has saved it; the
// plaintext exists only in this panel and is dropped with it.
export function secretPanel({ token, message, heading, onDone }) {
  const titleId = uid('secret-title');
  const input = h('input', { id: 'one-time-token', class: 'mono', type: 'text', readonly: true, spellcheck: 'false', autocomplete: 'off', 'aria-describedby': `${titleId}-warn` });
  input.value = token.token;
  const copied = h('span', { class: 'copy-status', role: 'status', 'aria-live': 'polite' });
  const copy = h('button', { type: 'button', class: 'button', id: 'copy-token' }, 'Copy');
  copy.addEventListener('click', async () => {
    input.focus();
    input.select();
    let ok = false;
    try {
      await navigator.clipboard.writeText(input.value);
      ok = true;
    } catch {
      // No Clipboard API (a page served over plain HTTP, say): copy the
      // selection the old way.
      try {
        ok = document.execCommand('copy');
      } catch {
        ok = false;
      }
    }
    copied.textContent = ok ? 'Copied to the clipboard.' : 'Copying failed: the token is selected, copy it with Ctrl+C (⌘C).';
  });
  input.addEventListener('focus', () => input.select());
  const done = h('button', { type: 'button', class: 'button primary', id: 'secret-done' }, 'I have saved it');
  const panel = h('section', { class: 'secret', 'aria-labelledby': titleId },
    h('h2', { id: titleId }, heading),
    h('p', { class: 'warning', id: `${titleId}-warn` },
      h('strong', null, 'Save this token now. '),
      message || 'Save this token securely - it cannot be retrieved later.'),
    h('label', { for: 'one-time-token' }, `Token for “${token.name}”`),
    h('div', { class: 'secret-row' }, input, copy),
    copied,
    h('p', { class: 'hint' }, 'The server keeps only a hash of it: after you leave this page it cannot be shown again. Send it as “Authorization: Bearer <token>”.'),
    h('div', { class: 'actions' }, done));
  done.addEventListener('click', () => {
    input.value = '';
    onDone();
  });
  return panel;
}

// table wraps a table in a scrollable, keyboard-focusable region.
export function table({ label, head, rows, cls = '', empty = 'Nothing yet.' }) {
  if (!rows.length) return h('p', { class: 'muted empty' }, empty);
  return h('div', { class: 'table-wrap', role: 'region', 'aria-label': label, tabindex: '0' },
    h('table', { class: cls },
      h('thead', null, h('tr', null, head.map(([text, c]) => h('th', { scope: 'col', class: c || null }, text)))),
      h('tbody', null, rows)));
}

// td is a table cell with the column's name for the narrow-screen layout.
export function td(label, content, cls) {
  return h('td', { class: cls || null, dataset: { label } }, content);
}

export function timeEl(iso, text) {
  return h('time', { datetime: iso, title: new Date(iso).toISOString() }, text);
}
