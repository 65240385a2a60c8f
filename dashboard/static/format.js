// Formatting of numbers, times and token fields.

const nf = new Intl.NumberFormat();
const ms = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const msSmall = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const pct = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
const rel = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export const num = (n) => nf.format(n ?? 0);
export const millis = (n) => `${(Math.abs(n ?? 0) < 10 ? msSmall : ms).format(n ?? 0)} ms`;
export const percent = (part, whole) => (whole > 0 ? pct.format(part / whole) : '–');

export function rateLimit(n) {
  return n === 0 ? 'Unlimited' : `${num(n)}/min`;
}

export function fullTime(iso) {
  return iso ? dateTime.format(new Date(iso)) : '';
}

// day formats an expiry: a midnight-UTC time as its UTC date (the way it was
// most likely entered), anything else in local time.
export function expiry(iso) {
  const d = new Date(iso);
  if (d.getUTCHours() === 0 && d.getUTCMinutes() === 0 && d.getUTCSeconds() === 0) {
    return dateOnly.format(new Date(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  }
  return dateTime.format(d);
}

// ago formats a time relative to now: "5 minutes ago", "in 3 days".
export function ago(iso, now = Date.now()) {
  const diff = (new Date(iso).getTime() - now) / 1000;
  const abs = Math.abs(diff);
  const units = [
    ['year', 365 * 86400], ['month', 30 * 86400], ['week', 7 * 86400],
    ['day', 86400], ['hour', 3600], ['minute', 60],
  ];
  for (const [unit, secs] of units) {
    if (abs >= secs) return rel.format(Math.round(diff / secs), unit);
  }
  return abs < 10 ? 'just now' : rel.format(Math.round(diff), 'second');
}

// status is "disabled", "expired" or "active".
export function status(token, now = Date.now()) {
  if (!token.active) return 'disabled';
  if (token.expires_at && new Date(token.expires_at).getTime() <= now) return 'expired';
  return 'active';
}

// isoDate is the UTC date of an ISO time, as an <input type=date> value.
export function isoDate(iso) {
  return iso ? new Date(iso).toISOString().slice(0, 10) : '';
}
