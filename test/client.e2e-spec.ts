import request, { Response } from 'supertest';
import { expectError, setCookies, tokenLogin } from './support/clients';
import { registerUser, STRONG_PASSWORD, uniqueEmail } from './support/factories';
import { appFor, Env } from './support/test-app';

/** What a client hits at the edges of the contract: lost CSRF tokens, cookie attributes, bad input. */

const ADMIN = { email: 'client.admin@example.com', password: 'admin-quartz-meadow-58' };

function detailsOf(response: Response): { field: string; message: string }[] {
  return (response.body as { details?: { field: string; message: string }[] }).details ?? [];
}

function expectValidation(response: Response, fields: string[]): void {
  expectError(response, 400, 'VALIDATION_FAILED');
  expect(
    detailsOf(response)
      .map((detail) => detail.field)
      .sort(),
  ).toEqual([...fields].sort());
}

describe('client edges', () => {
  const app = appFor({ ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password }).current;
  const api = () => request(app().url);

  async function cookieLogin() {
    const user = await registerUser(app().url);
    const response = await api()
      .post('/api/auth/token/login')
      .send({ email: user.email, password: user.password, refreshTokenInCookie: true })
      .expect(200);
    const rt = setCookies(response)
      .find((line) => line.startsWith('rt='))!
      .split(';')[0];
    return { user, rt, csrfToken: (response.body as { csrfToken: string }).csrfToken };
  }

  describe('GET /api/auth/token/csrf', () => {
    it('gives a page that reloaded its CSRF token back, and the refresh then works', async () => {
      const { rt, csrfToken } = await cookieLogin();
      // The page reloads: the csrfToken in its memory is gone, the HttpOnly rt cookie stays.
      const recovered = await api().get('/api/auth/token/csrf').set('Cookie', rt).expect(200);
      expect(recovered.body).toEqual({ csrfToken });
      expect(recovered.headers['cache-control']).toBe('no-store');
      const refreshed = await api()
        .post('/api/auth/token/refresh')
        .set('Cookie', rt)
        .set('X-CSRF-Token', (recovered.body as { csrfToken: string }).csrfToken)
        .send({})
        .expect(200);
      const next = setCookies(refreshed)
        .find((line) => line.startsWith('rt='))!
        .split(';')[0];
      // The rotated cookie is bound to the same token; the one it replaced no longer is.
      expect((await api().get('/api/auth/token/csrf').set('Cookie', next).expect(200)).body).toEqual({
        csrfToken,
      });
      expectError(await api().get('/api/auth/token/csrf').set('Cookie', rt), 401, 'REFRESH_TOKEN_INVALID');
    });

    it('answers 401 REFRESH_TOKEN_INVALID without a cookie, with an unknown one, and after logout', async () => {
      expectError(await api().get('/api/auth/token/csrf'), 401, 'REFRESH_TOKEN_INVALID');
      expectError(
        await api().get('/api/auth/token/csrf').set('Cookie', 'rt=not-a-token'),
        401,
        'REFRESH_TOKEN_INVALID',
      );
      const { rt, csrfToken } = await cookieLogin();
      const refreshed = await api()
        .post('/api/auth/token/refresh')
        .set('Cookie', rt)
        .set('X-CSRF-Token', csrfToken)
        .send({})
        .expect(200);
      const live = setCookies(refreshed)
        .find((line) => line.startsWith('rt='))!
        .split(';')[0];
      await api()
        .post('/api/auth/token/logout')
        .set('Authorization', `Bearer ${(refreshed.body as { accessToken: string }).accessToken}`)
        .set('Cookie', live)
        .set('X-CSRF-Token', csrfToken)
        .send({})
        .expect(204);
      expectError(await api().get('/api/auth/token/csrf').set('Cookie', live), 401, 'REFRESH_TOKEN_INVALID');
    });

    it('refuses a cross-site caller', async () => {
      const { rt } = await cookieLogin();
      expectError(
        await api().get('/api/auth/token/csrf').set('Cookie', rt).set('Origin', 'https://evil.example'),
        403,
        'CSRF_FAILED',
      );
    });

    it('is described in the OpenAPI document with its cookie security', async () => {
      const document = (await api().get('/docs-json').expect(200)).body as {
        paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, unknown> }>>;
        components: { securitySchemes: Record<string, { in?: string; name?: string }> };
      };
      const route = document.paths['/api/auth/token/csrf'].get;
      expect(Object.keys(route.responses)).toEqual(expect.arrayContaining(['200', '401']));
      expect(route.security).toEqual([{ refreshCookie: [] }]);
      expect(document.components.securitySchemes.refreshCookie).toMatchObject({ in: 'cookie', name: 'rt' });
    });
  });

  describe('validation reports every field at once, with the contract limits', () => {
    it('names both the email and the password of a bad registration', async () => {
      const response = await api().post('/api/auth/register').send({ email: 'x', password: 'short' });
      expectValidation(response, ['email', 'password']);
      expect(detailsOf(response)).toEqual(
        expect.arrayContaining([
          { field: 'email', message: 'email must be an email address of at most 254 characters' },
          { field: 'password', message: 'password must be 8 to 128 characters' },
        ]),
      );
    });

    it('enforces exactly the limits the OpenAPI document states', async () => {
      const document = (await api().get('/docs-json').expect(200)).body as {
        components: { schemas: Record<string, { properties: Record<string, Record<string, unknown>> }> };
      };
      const register = document.components.schemas.RegisterDto.properties;
      expect(register.email).toMatchObject({ type: 'string', maxLength: 254 });
      expect(register.password).toMatchObject({ type: 'string', minLength: 8, maxLength: 128 });
      expect(document.components.schemas.LoginDto.properties.email).toMatchObject({ maxLength: 254 });
      expect(document.components.schemas.ChangePasswordDto.properties.newPassword).toMatchObject({
        minLength: 8,
        maxLength: 128,
      });
      const longEmail = `${'a'.repeat(243)}@example.com`;
      expect(longEmail).toHaveLength(255);
      expectValidation(
        await api()
          .post('/api/auth/register')
          .send({ email: longEmail, password: 'p'.repeat(129) }),
        ['email', 'password'],
      );
      await api()
        .post('/api/auth/register')
        .send({ email: uniqueEmail(), password: 'k9-'.repeat(42) + 'zz' })
        .expect(201);
    });

    it.each([
      ['null', null],
      ['an array', ['a@example.com']],
      ['a number', 12345678],
      ['an object', { value: 'a@example.com' }],
    ])('refuses %s in every string field, one details entry per field', async (_label, value) => {
      expectValidation(await api().post('/api/auth/register').send({ email: value, password: value }), [
        'email',
        'password',
      ]);
      expectValidation(
        await api()
          .post('/api/auth/register')
          .send({ email: uniqueEmail(), password: STRONG_PASSWORD, displayName: value ?? 5 }),
        ['displayName'],
      );
      for (const path of ['/api/auth/session/login', '/api/auth/token/login']) {
        const login = await api().post(path).send({ email: value, password: value });
        expectValidation(login, ['email', 'password']);
        expect(login.headers['set-cookie']).toBeUndefined();
      }
      const user = await registerUser(app().url);
      const caller = await tokenLogin(app().url, user);
      expectValidation(
        await caller
          .auth(api().post('/api/me/password'))
          .send({ currentPassword: value, newPassword: value }),
        ['currentPassword', 'newPassword'],
      );
      expectValidation(await caller.auth(api().delete('/api/me')).send({ password: value }), ['password']);
      if (value !== null) {
        expectValidation(await api().post('/api/auth/token/refresh').send({ refreshToken: value }), [
          'refreshToken',
        ]);
      }
    });
  });

  describe('bad input is never a 500', () => {
    const nested = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

    it('refuses JSON nested deeper than 32 levels with MALFORMED_JSON, 5,000 deep included', async () => {
      for (const path of ['/api/auth/register', '/api/auth/session/login', '/api/auth/token/refresh']) {
        // 5,000 levels of arrays fit the 16 KiB body limit; objects that deep would not.
        for (const body of [`{"email":${'['.repeat(5000)}${']'.repeat(5000)}}`, nested(33)]) {
          const response = await api().post(path).set('Content-Type', 'application/json').send(body);
          expectError(response, 400, 'MALFORMED_JSON');
        }
      }
      // 32 levels is still JSON the service reads (and refuses as an unknown field).
      const at = await api()
        .post('/api/auth/register')
        .set('Content-Type', 'application/json')
        .send(nested(32));
      expectValidation(at, ['a', 'email', 'password']);
    });

    it('treats { refreshToken: null } on refresh as no refresh token: the cookie, else 401', async () => {
      expectError(
        await api().post('/api/auth/token/refresh').send({ refreshToken: null }),
        401,
        'REFRESH_TOKEN_INVALID',
      );
      const { rt, csrfToken } = await cookieLogin();
      const refreshed = await api()
        .post('/api/auth/token/refresh')
        .set('Cookie', rt)
        .set('X-CSRF-Token', csrfToken)
        .send({ refreshToken: null })
        .expect(200);
      expect((refreshed.body as { csrfToken: string }).csrfToken).toBe(csrfToken);
    });

    it('treats { refreshToken: null } on logout as no refresh token: the access token family is ended', async () => {
      const user = await registerUser(app().url);
      const caller = await tokenLogin(app().url, user);
      await caller.auth(api().post('/api/auth/token/logout')).send({ refreshToken: null }).expect(204);
      expectError(
        await api().post('/api/auth/token/refresh').send({ refreshToken: caller.refreshToken }),
        401,
        'REFRESH_TOKEN_INVALID',
      );
    });

    const INVISIBLE: [string, string][] = [
      ['U+200B', '\u200B'],
      ['U+200C', '\u200C'],
      ['U+200D', '\u200D'],
      ['U+2060', '\u2060'],
      ['U+FEFF', '\uFEFF'],
      ['U+00AD', '\u00AD'],
      ['U+202A', '\u202A'],
      ['U+202E', '\u202E'],
      ['U+2066', '\u2066'],
      ['U+2069', '\u2069'],
      ['NUL', '\u0000'],
      ['U+001B (C0)', '\u001B'],
      ['U+0085 (C1)', '\u0085'],
    ];

    it.each(INVISIBLE)('refuses %s in an email everywhere one is taken', async (_label, character) => {
      const existing = await registerUser(app().url);
      const [local, domain] = existing.email.split('@');
      const lookalike = `${local}${character}@${domain}`;
      expectValidation(
        await api().post('/api/auth/register').send({ email: lookalike, password: STRONG_PASSWORD }),
        ['email'],
      );
      for (const path of ['/api/auth/session/login', '/api/auth/token/login']) {
        const login = await api().post(path).send({ email: lookalike, password: existing.password });
        expectValidation(login, ['email']);
        expect(login.headers['set-cookie']).toBeUndefined();
      }
      const admin = await tokenLogin(app().url, ADMIN);
      expectValidation(
        await admin.auth(
          api()
            .get('/api/admin/users')
            .query({ email: `${local}${character}` }),
        ),
        ['email'],
      );
    });

    it('refuses a NUL in the admin email filter sent raw in the query string', async () => {
      const admin = await tokenLogin(app().url, ADMIN);
      expectValidation(await admin.auth(api().get('/api/admin/users?email=al%00ice')), ['email']);
      expectValidation(await admin.auth(api().get('/api/admin/users?email=a&email=b')), ['email']);
      await admin.auth(api().get('/api/admin/users?email=client.admin')).expect(200);
    });

    it.each([
      ['U+202E', '\u202E'],
      ['U+2067', '\u2067'],
      ['a C0 control', '\u0007'],
      ['a C1 control', '\u009B'],
    ])('refuses %s in displayName, and keeps joiners in emoji', async (_label, character) => {
      expectValidation(
        await api()
          .post('/api/auth/register')
          .send({ email: uniqueEmail(), password: STRONG_PASSWORD, displayName: `Al${character}ice` }),
        ['displayName'],
      );
      await api()
        .post('/api/auth/register')
        .send({ email: uniqueEmail(), password: STRONG_PASSWORD, displayName: 'Ana 👩\u200D💻' })
        .expect(201);
    });
  });
});

describe.each([
  ['lax (the default)', {}, 'Lax', false],
  ['strict', { COOKIE_SAMESITE: 'strict' }, 'Strict', false],
  // Behind a TLS-terminating proxy, as a deployment with secure cookies runs.
  ['none', { COOKIE_SAMESITE: 'none', COOKIE_SECURE: 'true', TRUST_PROXY: '1' }, 'None', true],
])('COOKIE_SAMESITE %s', (_label, env: Env, attribute, secure) => {
  const app = appFor(env).current;

  it(`sets the session cookie SameSite=${attribute}, and CSRF checks stay on`, async () => {
    const user = await registerUser(app().url);
    const login = await request(app().url)
      .post('/api/auth/session/login')
      .set('X-Forwarded-Proto', 'https')
      .send({ email: user.email, password: user.password })
      .expect(200);
    const cookies = setCookies(login).filter((line) => /^(__Host-)?sid=/.test(line));
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatch(new RegExp(`; SameSite=${attribute}(;|$)`));
    expect(/; Secure(;|$)/.test(cookies[0])).toBe(secure);
    const cookie = cookies[0].split(';')[0];
    const csrfToken = (login.body as { csrfToken: string }).csrfToken;
    const logoutAll = () =>
      request(app().url).post('/api/me/logout-all').set('X-Forwarded-Proto', 'https').set('Cookie', cookie);
    expectError(await logoutAll(), 403, 'CSRF_FAILED');
    expectError(
      await logoutAll().set('X-CSRF-Token', csrfToken).set('Origin', 'https://evil.example'),
      403,
      'CSRF_FAILED',
    );
    expectError(
      await logoutAll().set('X-CSRF-Token', csrfToken).set('Sec-Fetch-Site', 'cross-site'),
      403,
      'CSRF_FAILED',
    );
    await logoutAll().set('X-CSRF-Token', csrfToken).expect(204);
  });
});

describe('COOKIE_SAMESITE none: a frontend on another site', () => {
  const frontend = 'https://app.other-site.example';
  const app = appFor({
    COOKIE_SAMESITE: 'none',
    COOKIE_SECURE: 'true',
    TRUST_PROXY: '1',
    CORS_ORIGINS: frontend,
  }).current;
  // What a browser sends from a page of another site: every request is cross-site.
  const fromSite = (test: request.Test, origin: string) =>
    test.set('X-Forwarded-Proto', 'https').set('Origin', origin).set('Sec-Fetch-Site', 'cross-site');

  it('signs in and writes from the listed origin with the CSRF token, and refuses every other cross-site page', async () => {
    const user = await registerUser(app().url);
    const credentials = { email: user.email, password: user.password };
    expectError(
      await fromSite(request(app().url).post('/api/auth/session/login'), 'https://evil.example').send(
        credentials,
      ),
      403,
      'CSRF_FAILED',
    );
    const login = await fromSite(request(app().url).post('/api/auth/session/login'), frontend)
      .send(credentials)
      .expect(200);
    const cookie = setCookies(login)
      .find((line) => line.startsWith('__Host-sid='))!
      .split(';')[0];
    const csrfToken = (login.body as { csrfToken: string }).csrfToken;
    const logoutAll = (origin: string) =>
      fromSite(request(app().url).post('/api/me/logout-all'), origin).set('Cookie', cookie);

    expectError(await logoutAll(frontend), 403, 'CSRF_FAILED');
    expectError(await logoutAll('https://evil.example').set('X-CSRF-Token', csrfToken), 403, 'CSRF_FAILED');
    const noOrigin = request(app().url)
      .post('/api/me/logout-all')
      .set('X-Forwarded-Proto', 'https')
      .set('Sec-Fetch-Site', 'cross-site')
      .set('Cookie', cookie)
      .set('X-CSRF-Token', csrfToken);
    expectError(await noOrigin, 403, 'CSRF_FAILED');
    await logoutAll(frontend).set('X-CSRF-Token', csrfToken).expect(204);
  });
});

describe('COOKIE_SAMESITE lax: a listed origin on another site', () => {
  const frontend = 'https://app.other-site.example';
  const app = appFor({ CORS_ORIGINS: frontend }).current;

  it('is still refused when the browser says the request is cross-site', async () => {
    const user = await registerUser(app().url);
    expectError(
      await request(app().url)
        .post('/api/auth/session/login')
        .set('Origin', frontend)
        .set('Sec-Fetch-Site', 'cross-site')
        .send({ email: user.email, password: user.password }),
      403,
      'CSRF_FAILED',
    );
  });
});
