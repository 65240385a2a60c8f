// Hand-written SVG charts. Each chart is drawn at the width of its box (so
// its text stays legible on a phone) and redrawn when the box is resized.
import { h, s, replace } from './dom.js';
import { num, millis } from './format.js';

const HOUR = 3600 * 1000;

// buckets turns the API's hourly_usage (hours with requests only) into one
// bucket per hour of the last days days, the current hour last.
export function buckets(hours, days, now = Date.now()) {
  const n = days * 24;
  const end = Math.floor(now / HOUR) * HOUR + HOUR;
  const start = end - n * HOUR;
  const out = Array.from({ length: n }, (_, i) => ({ t: start + i * HOUR, requests: 0, ok: 0, failed: 0, avg: 0 }));
  for (const u of hours) {
    const i = Math.floor((Date.parse(u.hour) - start) / HOUR);
    if (i < 0 || i >= n) continue;
    const b = out[i];
    b.requests += u.requests;
    b.ok += u.successful_requests;
    b.failed += u.failed_requests;
    b.avg = u.avg_response_time;
  }
  return out;
}

// step returns a round axis step (1, 2 or 5 times a power of ten) for
// splitting max into about n intervals.
function step(max, n, integer) {
  const raw = max / n;
  const exp = 10 ** Math.floor(Math.log10(raw));
  const f = raw / exp;
  let st = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * exp;
  if (integer) st = Math.max(1, Math.round(st));
  return st;
}

function axis(max, integer) {
  if (!(max > 0)) return { top: integer ? 4 : 1, st: integer ? 1 : 0.25 };
  const st = step(max, 4, integer);
  return { top: Math.ceil(max / st) * st, st };
}

const hourFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric' });
const dateFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const tipFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

// xLabels returns [index, text] pairs for the time axis.
function xLabels(bs, days) {
  const out = [];
  bs.forEach((b, i) => {
    const d = new Date(b.t);
    if (days === 1) {
      if (d.getHours() % 3 === 0) out.push([i, hourFmt.format(d)]);
    } else if (d.getHours() === 0) {
      if (days <= 7) out.push([i, dayFmt.format(d)]);
      else if ((d.getDate() - 1) % 5 === 0) out.push([i, dateFmt.format(d)]);
    }
  });
  return out;
}

// responsive returns a box that calls draw(width) now that it has a width
// and again whenever its width changes, until signal aborts.
function responsive(cls, draw, signal) {
  const box = h('div', { class: cls });
  let last = -1;
  const redraw = () => {
    const w = Math.floor(box.clientWidth);
    if (w <= 0 || w === last) return;
    last = w;
    replace(box, draw(Math.max(w, 240)));
  };
  if (typeof ResizeObserver === 'function') {
    const ro = new ResizeObserver(() => redraw());
    ro.observe(box);
    signal?.addEventListener('abort', () => ro.disconnect());
  } else {
    requestAnimationFrame(redraw);
  }
  return box;
}

const M = { left: 48, right: 8, top: 10, bottom: 24 };

function frame(w, height, yTop, yStep, fmtY, labels, n) {
  const pw = w - M.left - M.right;
  const ph = height - M.top - M.bottom;
  const g = s('g', { class: 'axes' });
  for (let v = 0; v <= yTop + yStep / 2; v += yStep) {
    const y = M.top + ph - (v / yTop) * ph;
    g.append(
      s('line', { class: 'grid', x1: M.left, x2: M.left + pw, y1: y, y2: y }),
      s('text', { x: M.left - 6, y: y + 4, 'text-anchor': 'end', text: fmtY(v) }),
    );
  }
  let lastX = -Infinity;
  for (const [i, text] of labels) {
    const x = M.left + (i / n) * pw;
    if (x - lastX < 44) continue; // no overlapping labels on a narrow screen
    lastX = x;
    g.append(
      s('line', { class: 'tick', x1: x, x2: x, y1: M.top + ph, y2: M.top + ph + 4 }),
      s('text', { x, y: height - 6, 'text-anchor': 'middle', text }),
    );
  }
  return { g, pw, ph };
}

// requestsChart draws hourly requests as stacked bars: successes below,
// failures above.
export function requestsChart(bs, days, signal) {
  const ok = bs.reduce((a, b) => a + b.ok, 0);
  const failed = bs.reduce((a, b) => a + b.failed, 0);
  const peak = bs.reduce((a, b) => (b.requests > a.requests ? b : a), bs[0]);
  const label = `Requests per hour over the last ${days === 1 ? '24 hours' : `${days} days`}: ${num(ok)} successful, ${num(failed)} failed` +
    (peak && peak.requests ? `; the busiest hour, ${tipFmt.format(new Date(peak.t))}, had ${num(peak.requests)}.` : '.');
  const box = responsive('chart-box', (w) => {
    const height = 200;
    const { top, st } = axis(peak ? peak.requests : 0, true);
    const { g, pw, ph } = frame(w, height, top, st, num, xLabels(bs, days), bs.length);
    const bw = pw / bs.length;
    const gap = bw > 4 ? 1 : 0;
    const bars = s('g', { class: 'bars' });
    bs.forEach((b, i) => {
      if (!b.requests) return;
      const x = M.left + i * bw;
      const hOk = (b.ok / top) * ph;
      const hFail = (b.failed / top) * ph;
      const base = M.top + ph;
      bars.append(s('g', null,
        s('title', { text: `${tipFmt.format(new Date(b.t))}: ${num(b.requests)} requests, ${num(b.ok)} successful, ${num(b.failed)} failed, average ${millis(b.avg)}` }),
        hOk > 0 ? s('rect', { class: 'ok', x, y: base - hOk, width: Math.max(bw - gap, 0.75), height: hOk }) : null,
        hFail > 0 ? s('rect', { class: 'fail', x, y: base - hOk - hFail, width: Math.max(bw - gap, 0.75), height: hFail }) : null,
      ));
    });
    return s('svg', { viewBox: `0 0 ${w} ${height}`, width: '100%', height, role: 'img', 'aria-label': label, class: 'chart' }, g, bars);
  }, signal);
  return h('figure', { class: 'chart-figure' },
    box,
    h('figcaption', { class: 'legend' },
      h('span', { class: 'key ok' }, 'Successful (status < 400)'),
      h('span', { class: 'key fail' }, 'Failed (status ≥ 400)')));
}

// latencyChart draws the average response time of each hour with requests.
export function latencyChart(bs, days, signal) {
  const withReq = bs.filter((b) => b.requests > 0);
  const max = withReq.reduce((a, b) => Math.max(a, b.avg), 0);
  const label = `Average response time per hour over the last ${days === 1 ? '24 hours' : `${days} days`}; the slowest hour averaged ${millis(max)}.`;
  const box = responsive('chart-box', (w) => {
    const height = 160;
    const { top, st } = axis(max, false);
    const { g, pw, ph } = frame(w, height, top, st, (v) => `${num(v)} ms`, xLabels(bs, days), bs.length);
    const bw = pw / bs.length;
    const pts = [];
    let d = '';
    let prev = -2;
    bs.forEach((b, i) => {
      if (!b.requests) return;
      const x = M.left + i * bw + bw / 2;
      const y = M.top + ph - (b.avg / top) * ph;
      d += `${i === prev + 1 ? 'L' : 'M'}${x.toFixed(1)} ${y.toFixed(1)} `;
      prev = i;
      pts.push(s('circle', { class: 'pt', cx: x, cy: y, r: bs.length <= 168 ? 2.5 : 1.5 },
        s('title', { text: `${tipFmt.format(new Date(b.t))}: average ${millis(b.avg)} over ${num(b.requests)} requests` })));
    });
    return s('svg', { viewBox: `0 0 ${w} ${height}`, width: '100%', height, role: 'img', 'aria-label': label, class: 'chart' },
      g, d ? s('path', { class: 'line', d: d.trim() }) : null, s('g', null, pts));
  }, signal);
  return h('figure', { class: 'chart-figure' }, box);
}

// ratioBar draws successes and failures as one horizontal bar.
export function ratioBar(ok, failed) {
  const total = ok + failed;
  const okPct = total ? (ok / total) * 100 : 0;
  const label = total ? `${num(ok)} successful and ${num(failed)} failed requests` : 'No requests';
  return s('svg', { class: 'ratio', width: '100%', height: 12, role: 'img', 'aria-label': label },
    s('rect', { class: 'empty', x: 0, y: 0, width: '100%', height: 12, rx: 3 }),
    total ? s('rect', { class: 'ok', x: 0, y: 0, width: `${okPct}%`, height: 12 }) : null,
    total && failed ? s('rect', { class: 'fail', x: `${okPct}%`, y: 0, width: `${100 - okPct}%`, height: 12 }) : null);
}

// meterBar draws value as a share of max (a decorative bar beside a number).
export function meterBar(value, max) {
  const pct = max > 0 ? Math.max((value / max) * 100, value > 0 ? 1 : 0) : 0;
  return s('svg', { class: 'meter', width: '100%', height: 6, 'aria-hidden': 'true', focusable: 'false' },
    s('rect', { class: 'empty', x: 0, y: 0, width: '100%', height: 6, rx: 3 }),
    s('rect', { class: 'fill', x: 0, y: 0, width: `${pct}%`, height: 6, rx: 3 }));
}
