// Client-side validation of the token form. It mirrors the server's rules
// (apitoken's Manager and internal/pathmatch) so that most mistakes are
// shown before a request is sent; the server still checks everything, and
// its 400 messages are shown beside the field they name.

export const limits = {
  name: 255, // characters
  description: 4096, // characters
  rateLimit: 1_000_000_000,
  patterns: 100,
  patternBytes: 1024,
};

const chars = (s) => [...s].length;
const bytes = (s) => new TextEncoder().encode(s).length;

// patternError returns what is wrong with one allowed_endpoints pattern, or
// "".
export function patternError(p) {
  if (p.includes('\0')) return 'must not contain NUL characters';
  if (bytes(p) > limits.patternBytes) return `is longer than ${limits.patternBytes} bytes`;
  let path = p;
  if (!p.startsWith('/')) {
    const sp = p.indexOf(' ');
    if (sp <= 0) return 'must start with "/" (or a method such as GET and one space)';
    if (!/^[A-Z]+$/.test(p.slice(0, sp))) return 'must start with "/"; a method before it must be uppercase letters and one space';
    path = p.slice(sp + 1);
    if (!path.startsWith('/')) return 'must have a path starting with "/" after the method and one space';
  }
  if (path.split('/').includes('..')) return 'must not contain a ".." segment';
  return complexity(path);
}

// complexity checks the glob syntax and the limits the server sets on it:
// balanced [...] and {...}, no nested {...}, at most one {...} and one * per
// segment (a trailing * aside) and at most one ** before the end.
function complexity(path) {
  let depth = 0;
  let inClass = false;
  let stars = 0;
  let groups = 0;
  let supers = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    switch (c) {
      case '[':
        inClass = true;
        break;
      case '{':
        if (depth > 0) return 'is too complex: nested {...} groups';
        depth++;
        groups++;
        if (groups > 1) return 'is too complex: more than one {...} group in a path segment';
        break;
      case '}':
        if (depth === 0) return 'has a "}" without "{"';
        depth--;
        break;
      case '/':
        if (depth === 0) {
          stars = 0;
          groups = 0;
        }
        break;
      case '*': {
        const isSuper = path[i + 1] === '*';
        if (isSuper) i++;
        const last = i === path.length - 1 && depth === 0;
        if (last) break; // the trailing * or **
        stars++;
        if (stars > 1) return 'is too complex: more than one * in a path segment (a trailing * aside)';
        if (isSuper) {
          supers++;
          if (supers > 1) return 'is too complex: more than one ** before the end of the pattern';
        }
        break;
      }
      default:
    }
  }
  if (inClass) return 'has a "[" without "]"';
  if (depth > 0) return 'has a "{" without "}"';
  return '';
}

// todayUTC is today's date in UTC as YYYY-MM-DD.
function dateValue(y, m, d) {
  const t = Date.UTC(y, m - 1, d);
  const back = new Date(t);
  return back.getUTCFullYear() === y && back.getUTCMonth() === m - 1 && back.getUTCDate() === d ? t : NaN;
}

// validateToken checks the form's values ({name, description, rateLimit,
// expires, endpoints}, all strings) and returns {errors, body}: errors maps
// a field to its message; body is the JSON body to send (for an edit, only
// the fields that differ from original).
export function validateToken(v, { now = Date.now(), original = null } = {}) {
  const errors = {};
  const body = {};

  const name = v.name;
  if (name.trim() === '') errors.name = 'Enter a name.';
  else if (name.includes('\0')) errors.name = 'The name must not contain NUL characters.';
  else if (chars(name) > limits.name) errors.name = `The name must be at most ${limits.name} characters (it has ${chars(name)}).`;
  else body.name = name;

  const desc = v.description;
  if (desc.includes('\0')) errors.description = 'The description must not contain NUL characters.';
  else if (chars(desc) > limits.description) errors.description = `The description must be at most ${limits.description} characters (it has ${chars(desc)}).`;
  else body.description = desc;

  const rl = v.rateLimit.trim();
  if (rl !== '') {
    if (!/^\d+$/.test(rl) || Number(rl) > limits.rateLimit) {
      errors.rateLimit = `The rate limit must be a whole number from 0 (unlimited) to ${limits.rateLimit.toLocaleString()}.`;
    } else {
      body.rate_limit = Number(rl);
    }
  } else if (original) {
    errors.rateLimit = 'Enter a rate limit (0 for unlimited).';
  }

  const exp = v.expires.trim();
  const origExp = original && original.expires_at ? new Date(original.expires_at).toISOString().slice(0, 10) : null;
  if (exp !== '' && exp === origExp) {
    body.expires_at = exp; // unchanged, even if it has passed
  } else if (exp !== '') {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(exp);
    const t = m ? dateValue(Number(m[1]), Number(m[2]), Number(m[3])) : NaN;
    if (Number.isNaN(t)) errors.expires = 'Enter the expiry as a date (YYYY-MM-DD).';
    else if (t <= now) errors.expires = 'The expiry must be in the future: the token stops working at 00:00 UTC of that day.';
    else body.expires_at = exp;
  } else {
    body.expires_at = null;
  }

  const patterns = v.endpoints.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  if (patterns.length > limits.patterns) {
    errors.endpoints = `At most ${limits.patterns} patterns (there are ${patterns.length}).`;
  } else {
    for (const p of patterns) {
      const e = patternError(p);
      if (e) {
        errors.endpoints = `The pattern "${p.length > 64 ? `${p.slice(0, 64)}…` : p}" ${e}.`;
        break;
      }
    }
    if (!errors.endpoints) body.allowed_endpoints = patterns.length ? patterns : null;
  }

  if (original) {
    // Send only what changed.
    const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
    if (body.name === original.name) delete body.name;
    if (body.description === original.description) delete body.description;
    if (body.rate_limit === original.rate_limit) delete body.rate_limit;
    if ('expires_at' in body && body.expires_at === origExp) delete body.expires_at;
    const origEps = original.allowed_endpoints && original.allowed_endpoints.length ? original.allowed_endpoints : null;
    if ('allowed_endpoints' in body && same(body.allowed_endpoints, origEps)) delete body.allowed_endpoints;
  } else {
    if (body.description === '') delete body.description;
    if (body.expires_at === null) delete body.expires_at;
    if (body.allowed_endpoints === null) delete body.allowed_endpoints;
  }
  return { errors, body };
}

// serverField returns the form field a server 400 message names ("name is
// required" → "name"), or "".
export function serverField(message) {
  const map = { name: 'name', description: 'description', rate_limit: 'rateLimit', expires_at: 'expires', allowed_endpoints: 'endpoints' };
  const word = String(message).split(' ')[0];
  return map[word] || '';
}
