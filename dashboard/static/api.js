// The admin API client. It sends the admin secret as a Bearer token and
// never a cookie.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

// createApi returns request(method, path, {query, body, signal}) for the
// admin API at base. onUnauthorized is called on every 401.
export function createApi(base, secret, onUnauthorized) {
  const root = base.replace(/\/+$/, '');
  return async function request(method, path, { query, body, signal } = {}) {
    const url = new URL(root + path, document.baseURI);
    for (const [k, v] of Object.entries(query || {})) {
      if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
    }
    const headers = { Accept: 'application/json', Authorization: `Bearer ${secret}` };
    const init = { method, headers, signal, credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(url, init);
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      throw new ApiError(0, `The admin API at ${root} did not answer (${err.message}).`);
    }
    let data = null;
    if ((res.headers.get('Content-Type') || '').includes('json')) {
      try {
        data = await res.json();
      } catch {
        data = null;
      }
    }
    if (res.status === 401 && onUnauthorized) onUnauthorized();
    if (!res.ok) {
      const msg = data && typeof data.error === 'string' ? data.error : `${res.status} ${res.statusText}`.trim();
      throw new ApiError(res.status, msg);
    }
    return data;
  };
}
