// Every token's usage: totals, success and failure, top tokens and
// endpoints, tokens refused for their rate limit, tokens expiring soon.
import { h, replace } from '../dom.js';
import { num, millis, percent, rateLimit, expiry, ago } from '../format.js';
import { errorBox, loading, rangePicker, table, td, timeEl } from '../ui.js';
import { ratioBar, meterBar } from '../chart.js';
import { stat } from './detail.js';

const DAY = 86400 * 1000;
// At most this many expiring tokens are listed (GET / caps a page at 100).
const EXPIRING = 100;

export function overviewView(ctx) {
  let days = [1, 7, 30].includes(Number(ctx.params.get('days'))) ? Number(ctx.params.get('days')) : 7;
  ctx.setTitle('Overview');
  const totals = h('div', null, loading());
  const tops = h('div', { class: 'two-col' });
  const limited = h('div', null, loading());
  const expiringBox = h('div', null, loading());
  ctx.main.append(
    h('div', { class: 'page-head' },
      h('h1', { tabindex: '-1' }, 'Overview'),
      rangePicker(days, (d) => { days = d; ctx.replaceParams({ days: d === 7 ? null : d }); load(); })),
    totals,
    tops,
    h('div', { class: 'two-col' },
      h('section', { class: 'section', 'aria-labelledby': 'limited-title' },
        h('h2', { id: 'limited-title' }, 'Tokens at their rate limit'),
        h('p', { class: 'hint' }, 'Tokens whose requests were answered 429 Too Many Requests in the range, most refusals first.'),
        limited),
      h('section', { class: 'section', 'aria-labelledby': 'expiring-title' },
        h('h2', { id: 'expiring-title' }, 'Expiring within 7 days'),
        expiringBox)));

  let seq = 0;
  let ctl = null;
  const load = async () => {
    const mine = ++seq;
    ctl?.abort();
    ctl = new AbortController();
    const signal = AbortSignal.any([ctx.signal, ctl.signal]);
    totals.setAttribute('aria-busy', 'true');
    // Read the clock once: the expiring query and the "in 3 days" texts
    // agree.
    const now = Date.now();
    let ov;
    let all;
    let soon;
    try {
      [ov, all, soon] = await Promise.all([
        ctx.api('GET', '/stats/overview', { query: { days }, signal }),
        // Only the total of every token is needed.
        ctx.api('GET', '', { query: { limit: 1 }, signal }),
        ctx.api('GET', '', { query: { status: 'active', expires_before: new Date(now + 7 * DAY).toISOString(), limit: EXPIRING }, signal }),
      ]);
    } catch (err) {
      if (err.name === 'AbortError' || mine !== seq) return;
      replace(totals, err.status === 501 ? h('p', { class: 'muted' }, 'Usage analytics are not enabled on this server.') : errorBox(err));
      replace(tops);
      replace(limited);
      replace(expiringBox);
      return;
    } finally {
      if (mine === seq) totals.removeAttribute('aria-busy');
    }
    if (mine !== seq) return;
    const o = ov.overview;
    const range = days === 1 ? 'the last 24 hours' : `the last ${days} days`;
    replace(totals,
      h('div', { class: 'stats' },
        stat('Requests', num(o.total_requests), range),
        stat('Successful', num(o.successful_requests), percent(o.successful_requests, o.total_requests)),
        stat('Failed', num(o.failed_requests), percent(o.failed_requests, o.total_requests), o.failed_requests ? 'bad' : ''),
        stat('Avg response time', o.total_requests ? millis(o.avg_response_time) : '–'),
        stat('Active tokens', num(o.active_tokens), `of ${num(all.total)}`)),
      h('div', { class: 'ratio-wrap' }, ratioBar(o.successful_requests, o.failed_requests),
        h('p', { class: 'legend' }, h('span', { class: 'key ok' }, 'Successful'), h('span', { class: 'key fail' }, 'Failed'))));

    const maxTok = ov.top_tokens.reduce((a, t) => Math.max(a, t.requests), 0);
    const maxEp = ov.top_endpoints.reduce((a, e) => Math.max(a, e.requests), 0);
    replace(tops,
      h('section', { class: 'section', 'aria-labelledby': 'top-tokens-title' },
        h('h2', { id: 'top-tokens-title' }, 'Top tokens'),
        table({
          label: 'Top tokens',
          head: [['Token'], ['Requests', 'num'], ['Avg response', 'num']],
          rows: ov.top_tokens.slice(0, 10).map((t) => h('tr', null,
            td('Token', [h('a', { href: `#/tokens/${t.id}` }, t.name), meterBar(t.requests, maxTok)], 'wide'),
            td('Requests', num(t.requests), 'num'),
            td('Avg response', millis(t.avg_response_time), 'num'))),
          empty: `No requests in ${range}.`,
        })),
      h('section', { class: 'section', 'aria-labelledby': 'top-endpoints-title' },
        h('h2', { id: 'top-endpoints-title' }, 'Top endpoints'),
        table({
          label: 'Top endpoints',
          head: [['Endpoint'], ['Requests', 'num'], ['Avg response', 'num']],
          rows: ov.top_endpoints.slice(0, 10).map((e) => h('tr', null,
            td('Endpoint', [h('span', { class: 'method' }, e.method), ' ', h('code', null, e.endpoint), meterBar(e.requests, maxEp)], 'wide'),
            td('Requests', num(e.requests), 'num'),
            td('Avg response', millis(e.avg_response_time), 'num'))),
          empty: `No requests in ${range}.`,
        })));

    const expiring = [...soon.tokens].sort((a, b) => Date.parse(a.expires_at) - Date.parse(b.expires_at));
    replace(expiringBox,
      table({
        label: 'Tokens expiring within 7 days',
        head: [['Token'], ['Expires'], ['Requests 7d', 'num']],
        rows: expiring.map((t) => h('tr', null,
          td('Token', h('a', { href: `#/tokens/${t.id}` }, t.name), 'wide'),
          td('Expires', [timeEl(t.expires_at, expiry(t.expires_at)), h('span', { class: 'soon' }, ` (${ago(t.expires_at, now)})`)]),
          td('Requests 7d', num(t.requests_7d), 'num'))),
        empty: 'No active token expires within 7 days.',
      }),
      soon.total > expiring.length ? h('p', { class: 'hint' }, `The ${num(expiring.length)} most recently created of ${num(soon.total)}.`) : null);

    // Counted by the server, per token and hour, from every request.
    const maxRefused = ov.rate_limited_tokens.reduce((a, t) => Math.max(a, t.rate_limited_requests), 0);
    replace(limited, table({
      label: 'Tokens at their rate limit',
      head: [['Token'], ['Limit', 'num'], ['Refused (429)', 'num'], ['Requests', 'num'], ['% refused', 'num']],
      rows: ov.rate_limited_tokens.slice(0, 10).map((t) => h('tr', null,
        td('Token', [h('a', { href: `#/tokens/${t.token_id}` }, t.name), meterBar(t.rate_limited_requests, maxRefused)], 'wide'),
        td('Limit', rateLimit(t.rate_limit), 'num'),
        td('Refused (429)', num(t.rate_limited_requests), 'num'),
        td('Requests', num(t.requests), 'num'),
        td('% refused', percent(t.rate_limited_requests, t.requests), 'num'))),
      empty: `No token was refused for its rate limit in ${range}.`,
    }));
  };
  load();
}
