// Swagger UI at /docs, for a person trying the API in this page: the CSRF tokens that cookie-authenticated
// unsafe calls need, kept from the answers that hand them out and sent in X-CSRF-Token, as a frontend
// would. Two tokens: the session's (session login, GET /api/auth/session, a session login completed by
// /api/auth/mfa/verify) and the `rt` refresh cookie's (a token login or refresh with the refresh token in
// the cookie, GET /api/auth/token/csrf); refresh and token logout take the second. They live in
// sessionStorage, so a reload keeps them; a tab that has none asks the service again, once per call.
'use strict';
(() => {
  const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
  const REFRESH_ROUTES = '/api/auth/token/';
  const slots = {
    session: { key: 'auth-service:csrf:session', recover: '/api/auth/session' },
    refresh: { key: 'auth-service:csrf:refresh', recover: '/api/auth/token/csrf' },
  };

  const pathOf = (url) => new URL(url, window.location.href).pathname;
  const slotFor = (path) => (path.startsWith(REFRESH_ROUTES) ? slots.refresh : slots.session);

  async function recovered(slot) {
    const response = await fetch(slot.recover, { credentials: 'same-origin' });
    if (!response.ok) return undefined;
    const { csrfToken } = await response.json();
    if (typeof csrfToken !== 'string') return undefined;
    sessionStorage.setItem(slot.key, csrfToken);
    return csrfToken;
  }

  async function request(req) {
    if (!UNSAFE.has(req.method.toUpperCase())) return req;
    const sent = new Set(Object.keys(req.headers).map((name) => name.toLowerCase()));
    if (sent.has('x-csrf-token')) return req;
    const path = pathOf(req.url);
    // A bearer token decides beside a session cookie, and needs no CSRF token; the `rt` cookie still does.
    if (sent.has('authorization') && !path.startsWith(REFRESH_ROUTES)) return req;
    const slot = slotFor(path);
    const token = sessionStorage.getItem(slot.key) ?? (await recovered(slot));
    if (token) req.headers['X-CSRF-Token'] = token;
    return req;
  }

  function response(res) {
    const path = pathOf(res.url);
    const body = res.body;
    if (res.ok && body && typeof body.csrfToken === 'string') {
      // A token response carries an access token; a session's answer does not.
      const slot = path.startsWith(REFRESH_ROUTES) || 'accessToken' in body ? slots.refresh : slots.session;
      sessionStorage.setItem(slot.key, body.csrfToken);
    } else if ((res.ok && path.endsWith('/logout')) || (body && body.code === 'CSRF_FAILED')) {
      // Gone with the credential, or stale: the next call asks again.
      sessionStorage.removeItem(slotFor(path).key);
    }
    return res;
  }

  window.swaggerAuth = { request, response };
})();
