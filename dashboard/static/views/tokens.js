// The token list: search by name, filter by status, paging, and an
// enable/disable switch on each row.
import { h, replace } from '../dom.js';
import { num, rateLimit, expiry, ago, status } from '../format.js';
import { badge, errorBox, loading, switchButton, table, td, timeEl } from '../ui.js';

const PAGE = 20;
const DAY = 86400 * 1000;

export function tokensView(ctx) {
  const p = ctx.params;
  let search = p.get('search') || '';
  let filter = ['active', 'disabled', 'expired'].includes(p.get('status')) ? p.get('status') : 'all';
  let page = Math.max(1, Number.parseInt(p.get('page'), 10) || 1);
  ctx.setTitle('Tokens');

  const searchInput = h('input', { type: 'search', id: 'token-search', value: search, autocomplete: 'off', maxlength: '255' });
  const statusSelect = h('select', { id: 'token-status' },
    [['all', 'All'], ['active', 'Active'], ['disabled', 'Disabled'], ['expired', 'Expired']]
      .map(([v, t]) => h('option', { value: v, selected: v === filter }, t)));
  const summary = h('p', { class: 'summary', role: 'status', 'aria-live': 'polite' });
  const results = h('div', { class: 'results' }, loading());
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });

  ctx.main.append(
    h('div', { class: 'page-head' },
      h('h1', { tabindex: '-1' }, 'Tokens'),
      h('a', { class: 'button primary', href: '#/tokens/new', id: 'new-token' }, 'New token')),
    h('form', { class: 'filters', role: 'search', novalidate: true, onsubmit: (e) => e.preventDefault() },
      h('div', { class: 'field grow' }, h('label', { for: 'token-search' }, 'Search by name'), searchInput),
      h('div', { class: 'field' }, h('label', { for: 'token-status' }, 'Status'), statusSelect)),
    summary,
    results,
    pager);

  let seq = 0;
  const load = async () => {
    const mine = ++seq;
    results.setAttribute('aria-busy', 'true');
    try {
      // The server filters by status (at its clock) and pages.
      const { tokens, total } = await ctx.api('GET', '', {
        query: { limit: PAGE, offset: (page - 1) * PAGE, search, status: filter === 'all' ? null : filter },
        signal: ctx.signal,
      });
      if (mine !== seq) return;
      if (!tokens.length && page > 1 && total > 0) {
        page = Math.max(1, Math.ceil(total / PAGE));
        sync();
        load();
        return;
      }
      renderRows(tokens, total);
    } catch (err) {
      if (err.name === 'AbortError' || mine !== seq) return;
      replace(results, errorBox(err));
      summary.textContent = '';
      replace(pager);
    } finally {
      if (mine === seq) results.removeAttribute('aria-busy');
    }
  };

  const sync = () => ctx.replaceParams({ search: search || null, status: filter === 'all' ? null : filter, page: page > 1 ? page : null });

  const renderRows = (tokens, total) => {
    const from = total ? (page - 1) * PAGE + 1 : 0;
    const to = (page - 1) * PAGE + tokens.length;
    summary.textContent = total
      ? `Showing ${num(from)}–${num(to)} of ${num(total)} ${total === 1 ? 'token' : 'tokens'}.`
      : '';
    const now = Date.now();
    const rows = tokens.map((t) => {
      const st = status(t, now);
      const soon = t.expires_at && st === 'active' && new Date(t.expires_at).getTime() - now < 7 * DAY;
      const statusCell = td('Status', badge(t));
      return h('tr', { dataset: { id: String(t.id) } },
        td('Name', [h('a', { href: `#/tokens/${t.id}`, class: 'token-name' }, t.name),
          t.description ? h('span', { class: 'desc' }, t.description) : null], 'name-cell'),
        td('Start', h('code', null, `${t.start}…`)),
        statusCell,
        td('Rate limit', rateLimit(t.rate_limit), 'num'),
        td('Expires', t.expires_at
          ? [timeEl(t.expires_at, expiry(t.expires_at)), soon ? h('span', { class: 'soon' }, ` (${ago(t.expires_at, now)})`) : null]
          : h('span', { class: 'muted' }, 'Never'), 'expires-cell'),
        td('Last used', t.last_used_at ? timeEl(t.last_used_at, ago(t.last_used_at, now)) : h('span', { class: 'muted' }, 'Never')),
        td('Requests 24h', num(t.requests_24h), 'num'),
        td('Requests 7d', num(t.requests_7d), 'num'),
        td('Total requests', num(t.total_requests), 'num'),
        td('Active', switchButton(t.active, t.name, async (next) => {
          try {
            const res = await ctx.api('PATCH', `/${t.id}`, { body: { active: next }, signal: ctx.signal });
            // Update the row in place, so the switch keeps the focus.
            replace(statusCell, badge(res.token));
            ctx.announce(`Token “${t.name}” ${next ? 'enabled' : 'disabled'}.`);
            return true;
          } catch (err) {
            if (err.name !== 'AbortError') ctx.announce(`Could not ${next ? 'enable' : 'disable'} “${t.name}”: ${err.message}`, true);
            return false;
          }
        }), 'switch-cell'));
    });
    const empty = search || filter !== 'all'
      ? 'No tokens match the search and filter.'
      : 'There are no tokens yet. Create one with “New token”.';
    replace(results, table({
      label: 'Tokens',
      cls: 'tokens',
      head: [['Name'], ['Start'], ['Status'], ['Rate limit', 'num'], ['Expires'], ['Last used'], ['24h', 'num'], ['7d', 'num'], ['Total', 'num'], ['Active']],
      rows,
      empty,
    }));
    const pages = Math.max(1, Math.ceil(total / PAGE));
    const prev = h('button', { type: 'button', class: 'button', disabled: page <= 1 }, '← Previous');
    const next = h('button', { type: 'button', class: 'button', disabled: page >= pages }, 'Next →');
    prev.addEventListener('click', () => { page -= 1; sync(); load(); });
    next.addEventListener('click', () => { page += 1; sync(); load(); });
    replace(pager, total > PAGE ? [prev, h('span', { class: 'muted' }, `Page ${page} of ${pages}`), next] : []);
  };

  let timer = 0;
  searchInput.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      search = searchInput.value;
      page = 1;
      sync();
      load();
    }, 250);
  });
  statusSelect.addEventListener('change', () => {
    filter = statusSelect.value;
    page = 1;
    sync();
    load();
  });
  ctx.signal.addEventListener('abort', () => clearTimeout(timer));
  load();
}

