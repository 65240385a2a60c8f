// One token: its settings, actions (enable/disable, edit, rotate, delete),
// its usage over 1, 7 or 30 days and its audit log.
import { h, replace } from '../dom.js';
import { num, millis, percent, rateLimit, expiry, ago, fullTime } from '../format.js';
import { badge, confirmDialog, errorBox, loading, rangePicker, secretPanel, switchButton, table, td, timeEl } from '../ui.js';
import { buckets, requestsChart, latencyChart } from '../chart.js';

const AUDIT_PAGE = 20;

export function detailView(ctx, id) {
  let days = [1, 7, 30].includes(Number(ctx.params.get('days'))) ? Number(ctx.params.get('days')) : 7;
  ctx.setTitle('Token');
  const head = h('div', { class: 'detail-head' }, h('h1', { tabindex: '-1' }, 'Token'), loading());
  const secretBox = h('div');
  const settings = h('div');
  const usage = h('div', { class: 'usage' });
  const audit = h('div');
  ctx.main.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/tokens' }, '← Tokens')),
    head, secretBox, settings,
    h('section', { 'aria-labelledby': 'usage-title', class: 'section' },
      h('div', { class: 'section-head' },
        h('h2', { id: 'usage-title' }, 'Usage'),
        rangePicker(days, (d) => { days = d; ctx.replaceParams({ days: d === 7 ? null : d }); loadUsage(); }),
        h('button', { type: 'button', class: 'button', id: 'refresh-usage', onclick: () => { loadToken(); loadUsage(); loadAudit(0); } }, 'Refresh')),
      usage),
    h('section', { 'aria-labelledby': 'audit-title', class: 'section' },
      h('h2', { id: 'audit-title' }, 'Audit log'),
      audit));

  let token = null;

  const loadToken = async () => {
    try {
      const res = await ctx.api('GET', `/${id}`, { signal: ctx.signal });
      token = res.token;
      renderToken();
    } catch (err) {
      if (err.name === 'AbortError') return;
      replace(head, h('h1', { tabindex: '-1' }, err.status === 404 ? 'Token not found' : 'Token'), errorBox(err));
      replace(settings);
    }
  };

  const renderToken = () => {
    const t = token;
    ctx.setTitle(t.name);
    const rotate = h('button', { type: 'button', class: 'button', id: 'rotate-token' }, 'Rotate');
    const del = h('button', { type: 'button', class: 'button danger', id: 'delete-token' }, 'Delete');
    rotate.addEventListener('click', () => doRotate(rotate));
    del.addEventListener('click', () => doDelete(del));
    const focused = document.activeElement && head.contains(document.activeElement) ? document.activeElement.id : '';
    replace(head,
      h('div', { class: 'title-row' },
        h('h1', { tabindex: '-1', id: 'token-title' }, t.name),
        badge(t)),
      h('p', { class: 'muted' }, h('code', null, `${t.start}…`), ` · id ${t.id}`),
      t.description ? h('p', { class: 'description' }, t.description) : null,
      h('div', { class: 'toolbar' },
        h('span', { class: 'switch-label' }, switchButton(t.active, t.name, async (next) => {
          try {
            const res = await ctx.api('PATCH', `/${t.id}`, { body: { active: next }, signal: ctx.signal });
            token = { ...token, ...res.token };
            ctx.announce(`Token “${t.name}” ${next ? 'enabled' : 'disabled'}.`);
            renderToken();
            loadAudit(0);
            document.querySelector('.detail-head .switch')?.focus();
            return true;
          } catch (err) {
            if (err.name !== 'AbortError') ctx.announce(`Could not ${next ? 'enable' : 'disable'} the token: ${err.message}`, true);
            return false;
          }
        })),
        h('a', { class: 'button', href: `#/tokens/${t.id}/edit`, id: 'edit-token' }, 'Edit'),
        rotate, del));
    if (focused) document.getElementById(focused)?.focus();
    const now = Date.now();
    const eps = t.allowed_endpoints && t.allowed_endpoints.length
      ? h('ul', { class: 'patterns' }, t.allowed_endpoints.map((p) => h('li', null, h('code', null, p))))
      : 'All endpoints';
    const item = (k, v) => [h('dt', null, k), h('dd', null, v)];
    replace(settings, h('section', { class: 'section', 'aria-label': 'Settings' },
      h('div', { class: 'stats small' },
        stat('Requests 24h', num(t.requests_24h)), stat('Requests 7d', num(t.requests_7d)), stat('Total requests', num(t.total_requests))),
      h('dl', { class: 'props' },
        item('Rate limit', rateLimit(t.rate_limit)),
        item('Allowed endpoints', eps),
        item('Expires', t.expires_at ? [timeEl(t.expires_at, expiry(t.expires_at)), ` (${ago(t.expires_at, now)})`] : 'Never'),
        item('Last used', t.last_used_at ? [timeEl(t.last_used_at, fullTime(t.last_used_at)), ` (${ago(t.last_used_at, now)})`] : 'Never'),
        item('Created', timeEl(t.created_at, fullTime(t.created_at))),
        item('Updated', timeEl(t.updated_at, fullTime(t.updated_at))),
        t.previous_expires_at ? item('Previous secret', [
          new Date(t.previous_expires_at).getTime() > now ? 'works until ' : 'stopped working ',
          timeEl(t.previous_expires_at, fullTime(t.previous_expires_at))]) : null,
        t.user_id ? item('Owner', t.user_id) : null,
        t.scopes && t.scopes.length ? item('Scopes', t.scopes.join(', ')) : null)));
  };

  const doRotate = async (btn) => {
    const grace = h('select', { id: 'rotate-grace' },
      [[0, 'Stops at once'], [3600, 'Keeps working 1 hour'], [86400, 'Keeps working 24 hours'], [604800, 'Keeps working 7 days']]
        .map(([v, t]) => h('option', { value: String(v) }, t)));
    const choice = await confirmDialog({
      title: `Rotate “${token.name}”?`,
      body: [
        h('p', null, 'A new secret is made and shown once; everything else (id, limits, usage) stays. Clients must switch to the new secret.'),
        h('div', { class: 'field' }, h('label', { for: 'rotate-grace' }, 'The old secret'), grace),
      ],
      confirmText: 'Rotate token',
      collect: () => Number(grace.value),
    });
    if (choice === null) {
      btn.focus();
      return;
    }
    try {
      const body = choice ? { grace_period_seconds: choice } : undefined;
      const res = await ctx.api('POST', `/${id}/rotate`, { body, signal: ctx.signal });
      token = { ...token, ...res.token };
      delete token.token; // the plaintext stays in the panel only
      renderToken();
      replace(secretBox, secretPanel({
        token: res.token,
        message: res.message,
        heading: `New secret for “${res.token.name}”`,
        onDone: () => { replace(secretBox); document.getElementById('token-title')?.focus(); },
      }));
      ctx.announce('Token rotated. Copy the new secret now: it is shown only once.');
      document.getElementById('one-time-token')?.focus();
      loadAudit(0);
    } catch (err) {
      if (err.name !== 'AbortError') ctx.announce(`Could not rotate the token: ${err.message}`, true);
    }
  };

  const doDelete = async (btn) => {
    const ok = await confirmDialog({
      title: `Delete “${token.name}”?`,
      body: h('p', null, 'Clients using this token are refused at once. The token cannot be restored; its audit log is kept.'),
      confirmText: 'Delete token',
      danger: true,
    });
    if (!ok) {
      btn.focus();
      return;
    }
    try {
      await ctx.api('DELETE', `/${id}`, { signal: ctx.signal });
      ctx.announce(`Token “${token.name}” deleted.`);
      ctx.go('#/tokens');
    } catch (err) {
      if (err.name !== 'AbortError') ctx.announce(`Could not delete the token: ${err.message}`, true);
    }
  };

  let usageSeq = 0;
  let usageCtl = null;
  const loadUsage = async () => {
    const mine = ++usageSeq;
    usageCtl?.abort();
    usageCtl = new AbortController();
    const signal = AbortSignal.any([ctx.signal, usageCtl.signal]);
    usage.setAttribute('aria-busy', 'true');
    if (!usage.firstChild) usage.append(loading());
    try {
      const u = await ctx.api('GET', `/${id}/usage`, { query: { days }, signal });
      if (mine !== usageSeq) return;
      renderUsage(u, signal);
    } catch (err) {
      if (err.name === 'AbortError' || mine !== usageSeq) return;
      replace(usage, err.status === 501 ? h('p', { class: 'muted' }, 'Usage analytics are not enabled on this server.') : errorBox(err));
    } finally {
      if (mine === usageSeq) usage.removeAttribute('aria-busy');
    }
  };

  const renderUsage = (u, signal) => {
    const bs = buckets(u.hourly_usage, days);
    let req = 0;
    let ok = 0;
    let failed = 0;
    let sum = 0;
    for (const x of u.hourly_usage) {
      req += x.requests;
      ok += x.successful_requests;
      failed += x.failed_requests;
      sum += x.avg_response_time * x.requests;
    }
    const range = days === 1 ? 'the last 24 hours' : `the last ${days} days`;
    replace(usage,
      h('div', { class: 'stats' },
        stat('Requests', num(req)),
        stat('Successful', num(ok), percent(ok, req)),
        stat('Failed', num(failed), percent(failed, req), failed ? 'bad' : ''),
        stat('Avg response time', req ? millis(sum / req) : '–')),
      h('h3', null, 'Requests per hour'),
      requestsChart(bs, days, signal),
      h('h3', null, 'Average response time per hour'),
      latencyChart(bs, days, signal),
      h('h3', null, 'Endpoints'),
      table({
        label: 'Endpoints',
        head: [['Method'], ['Endpoint'], ['Requests', 'num'], ['Avg response', 'num']],
        rows: u.endpoint_usage.map((e) => h('tr', null,
          td('Method', h('span', { class: 'method' }, e.method)), td('Endpoint', h('code', null, e.endpoint)),
          td('Requests', num(e.requests), 'num'), td('Avg response', millis(e.avg_response_time), 'num'))),
        empty: `No requests in ${range}.`,
      }),
      h('h3', null, 'Recent requests'),
      table({
        label: 'Recent requests',
        cls: 'recent',
        head: [['Time'], ['Method'], ['Endpoint'], ['Status'], ['Latency', 'num'], ['IP'], ['User agent']],
        rows: u.recent_requests.map((r) => h('tr', null,
          td('Time', timeEl(r.created_at, fullTime(r.created_at))),
          td('Method', h('span', { class: 'method' }, r.method)),
          td('Endpoint', h('code', null, r.endpoint)),
          td('Status', h('span', { class: `code code-${String(r.status_code)[0]}xx` }, String(r.status_code))),
          td('Latency', millis(r.response_time_ms), 'num'),
          td('IP', h('code', null, r.ip_address)),
          td('User agent', h('span', { class: 'ua', title: r.user_agent }, r.user_agent || '–'), 'wide'))),
        empty: `No requests in ${range}.`,
      }));
  };

  let auditEntries = [];
  const loadAudit = async (offset) => {
    try {
      const res = await ctx.api('GET', `/${id}/audit`, { query: { limit: AUDIT_PAGE, offset }, signal: ctx.signal });
      auditEntries = offset ? auditEntries.concat(res.entries) : res.entries;
      const more = auditEntries.length < res.total
        ? h('button', { type: 'button', class: 'button', onclick: () => loadAudit(auditEntries.length) }, `Show more (${num(res.total - auditEntries.length)})`)
        : null;
      replace(audit, table({
        label: 'Audit log',
        cls: 'audit',
        head: [['Time'], ['Action'], ['Actor'], ['Changes']],
        rows: auditEntries.map((e) => h('tr', null,
          td('Time', timeEl(e.created_at, fullTime(e.created_at))),
          td('Action', h('span', { class: `action action-${e.action}` }, e.action)),
          td('Actor', e.actor || '–'),
          td('Changes', e.changes && e.changes.length
            ? h('ul', { class: 'changes' }, e.changes.map((c) => h('li', null, h('code', null, c.field), ': ', show(c.from), ' → ', show(c.to))))
            : '–', 'wide'))),
        empty: 'No changes recorded.',
      }), more);
    } catch (err) {
      if (err.name === 'AbortError') return;
      replace(audit, err.status === 501 ? h('p', { class: 'muted' }, 'The store keeps no audit log.') : errorBox(err));
    }
  };

  loadToken();
  loadUsage();
  loadAudit(0);
}

function show(v) {
  if (v === null || v === undefined) return h('span', { class: 'muted' }, 'none');
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  return h('code', null, text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

export function stat(label, value, sub, cls) {
  return h('div', { class: `stat ${cls || ''}`.trim() },
    h('span', { class: 'stat-label' }, label),
    h('span', { class: 'stat-value' }, value),
    sub ? h('span', { class: 'stat-sub' }, sub) : null);
}

