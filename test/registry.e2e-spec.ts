import request from 'supertest';
import { registerUser, STRONG_PASSWORD, uniqueEmail } from './support/factories';
import {
  asBearer,
  Caller,
  expectError,
  refresh,
  sessionCookieOf,
  sessionLogin,
  signIn,
  tokenLogin,
} from './support/clients';
import { createTestStorage, RunningApp, startApp, TestStorage } from './support/test-app';

const ADMIN = { email: 'root.admin@example.com', password: 'admin-orbit-lantern-77' };
const NEW_PASSWORD = 'quartz-meadow-falcon-91';
const METHODS = ['session', 'token'] as const;

describe('registry: /api/me, sign-ins, account, roles, admin, audit', () => {
  let storage: TestStorage;
  let running: RunningApp;
  let url: string;

  beforeAll(async () => {
    storage = await createTestStorage();
    running = await startApp({
      ...storage.env,
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      CORS_ORIGINS: 'https://app.example',
    });
    url = running.url;
  });

  afterAll(async () => {
    await running?.close();
    await storage?.drop();
  });

  const admin = (): Promise<Caller> => signIn(url, ADMIN, 'token');
  const get = (caller: Caller, path: string) => caller.auth(request(url).get(path));
  const post = (caller: Caller, path: string) => caller.auth(request(url).post(path));
  const del = (caller: Caller, path: string) => caller.auth(request(url).delete(path));

  /** 200 when the caller still works, else the error code it gets. */
  async function state(caller: Caller): Promise<number | string> {
    const response = await get(caller, '/api/me');
    return response.status === 200 ? 200 : (response.body as { code: string }).code;
  }

  async function auditOf(userId: string, type?: string): Promise<Record<string, unknown>[]> {
    const query = new URLSearchParams({ userId, limit: '100', ...(type ? { type } : {}) });
    const response = await get(await admin(), `/api/admin/audit?${query.toString()}`).expect(200);
    return (response.body as { items: Record<string, unknown>[] }).items;
  }

  describe('either method', () => {
    it('answers 401 AUTHENTICATION_REQUIRED with a Bearer challenge when nothing is presented', async () => {
      const response = await request(url).get('/api/me');
      expectError(response, 401, 'AUTHENTICATION_REQUIRED');
      expect(response.headers['www-authenticate']).toMatch(/^Bearer /);
    });

    it.each(METHODS)('GET /api/me names the user and the %s it called with', async (method) => {
      const user = await registerUser(url, { displayName: 'Me Myself' });
      const caller = await signIn(url, user, method);
      const response = await get(caller, '/api/me').expect(200);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.body).toEqual({
        user: {
          id: user.id,
          email: user.email,
          displayName: 'Me Myself',
          role: 'user',
          emailVerified: false,
          mfaEnabled: false,
          createdAt: expect.any(String),
        },
        auth: { method, sessionId: expect.any(String), expiresAt: expect.any(String), mfa: false },
      });
      expect(Date.parse((response.body as { auth: { expiresAt: string } }).auth.expiresAt)).toBeGreaterThan(
        Date.now(),
      );
    });

    it('a bearer header decides when a cookie comes along, and needs no CSRF token', async () => {
      const user = await registerUser(url);
      const session = await sessionLogin(url, user);
      const token = await tokenLogin(url, user);
      const response = await request(url)
        .get('/api/me')
        .set('Cookie', session.cookie)
        .set('Authorization', `Bearer ${token.accessToken}`)
        .expect(200);
      expect((response.body as { auth: { method: string } }).auth.method).toBe('token');
      // An unsafe bearer request with no CSRF token and a foreign origin is not a CSRF case.
      await request(url)
        .delete('/api/me/sessions/00000000-0000-4000-8000-000000000000')
        .set('Authorization', `Bearer ${token.accessToken}`)
        .set('Origin', 'https://evil.example')
        .expect(404);
    });

    it('a cookie-authenticated unsafe request needs the CSRF token and a trusted origin', async () => {
      const user = await registerUser(url);
      const session = await sessionLogin(url, user);
      const noToken = await request(url).post('/api/me/logout-all').set('Cookie', session.cookie);
      expectError(noToken, 403, 'CSRF_FAILED');
      const wrongToken = await request(url)
        .post('/api/me/logout-all')
        .set('Cookie', session.cookie)
        .set('X-CSRF-Token', 'x'.repeat(43));
      expectError(wrongToken, 403, 'CSRF_FAILED');
      const crossSite = await session
        .auth(request(url).post('/api/me/logout-all'))
        .set('Origin', 'https://evil.example');
      expectError(crossSite, 403, 'CSRF_FAILED');
      const fetchSite = await session
        .auth(request(url).post('/api/me/logout-all'))
        .set('Sec-Fetch-Site', 'cross-site');
      expectError(fetchSite, 403, 'CSRF_FAILED');
      expect(await state(session)).toBe(200);
      await session
        .auth(request(url).post('/api/me/logout-all'))
        .set('Origin', 'https://app.example')
        .expect(204);
    });

    it('an unsupported method on a known path is 404', async () => {
      expectError(await request(url).put('/api/me'), 404, 'NOT_FOUND');
    });
  });

  describe('sign-ins', () => {
    it.each(METHODS)(
      'lists sessions and families together, marking the %s caller current',
      async (method) => {
        const user = await registerUser(url);
        const session = await sessionLogin(url, user);
        const token = await tokenLogin(url, user);
        const caller = method === 'session' ? session : token;
        const response = await get(caller, '/api/me/sessions').set('User-Agent', 'registry-test').expect(200);
        const list = response.body as Record<string, unknown>[];
        expect(list).toHaveLength(2);
        for (const entry of list) {
          expect(Object.keys(entry).sort()).toEqual(
            ['createdAt', 'current', 'expiresAt', 'id', 'ip', 'lastSeenAt', 'method', 'userAgent'].sort(),
          );
          expect(JSON.stringify(entry)).not.toContain(token.refreshToken);
          expect(session.cookie).not.toContain(entry.id as string);
        }
        expect(list.map((entry) => [entry.method, entry.current]).sort()).toEqual(
          [
            ['session', method === 'session'],
            ['token', method === 'token'],
          ].sort(),
        );
        expect(list.every((entry) => entry.ip === '127.0.0.1' || entry.ip === '::ffff:127.0.0.1')).toBe(true);
      },
    );

    it('a cookie session revokes a token family: its access token and refresh token stop at once', async () => {
      const user = await registerUser(url);
      const session = await sessionLogin(url, user);
      const token = await tokenLogin(url, user);
      const list = (await get(session, '/api/me/sessions').expect(200)).body as {
        id: string;
        method: string;
      }[];
      const family = list.find((entry) => entry.method === 'token')!;
      await del(session, `/api/me/sessions/${family.id}`).expect(204);
      expect(await state(token)).toBe('TOKEN_REVOKED');
      expectError(await refresh(url, token.refreshToken), 401, 'REFRESH_TOKEN_INVALID');
      expect(await state(session)).toBe(200);
      const events = await auditOf(user.id, 'session.revoked');
      expect(events[0]).toMatchObject({ detail: { method: 'token', id: family.id } });
    });

    it('a bearer request revokes a cookie session', async () => {
      const user = await registerUser(url);
      const session = await sessionLogin(url, user);
      const token = await tokenLogin(url, user);
      const list = (await get(token, '/api/me/sessions').expect(200)).body as {
        id: string;
        method: string;
      }[];
      const target = list.find((entry) => entry.method === 'session')!;
      await del(token, `/api/me/sessions/${target.id}`).expect(204);
      expect(await state(session)).toBe('SESSION_INVALID');
      expect(await state(token)).toBe(200);
    });

    it.each(METHODS)('revoking its own %s signs the caller out', async (method) => {
      const user = await registerUser(url);
      const caller = await signIn(url, user, method);
      const { auth } = (await get(caller, '/api/me').expect(200)).body as { auth: { sessionId: string } };
      const response = await del(caller, `/api/me/sessions/${auth.sessionId}`).expect(204);
      if (method === 'session') expect(sessionCookieOf(response)).toBe('sid=');
      expect(await state(caller)).toBe(method === 'session' ? 'SESSION_INVALID' : 'TOKEN_REVOKED');
    });

    it("404 for another user's sign-in or an unknown id, which stays untouched; 400 for a non-UUID", async () => {
      const alice = await registerUser(url);
      const bob = await registerUser(url);
      const aliceCaller = await tokenLogin(url, alice);
      const bobSession = await sessionLogin(url, bob);
      const bobToken = await tokenLogin(url, bob);
      const bobList = (await get(bobSession, '/api/me/sessions').expect(200)).body as { id: string }[];
      for (const entry of bobList) {
        expectError(await del(aliceCaller, `/api/me/sessions/${entry.id}`), 404, 'NOT_FOUND');
      }
      expectError(
        await del(aliceCaller, '/api/me/sessions/3f1b2c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d'),
        404,
        'NOT_FOUND',
      );
      expectError(await del(aliceCaller, '/api/me/sessions/not-a-uuid'), 400, 'VALIDATION_FAILED');
      expect(await state(bobSession)).toBe(200);
      expect(await state(bobToken)).toBe(200);
    });

    it.each(METHODS)(
      'logout-all from a %s revokes every session, family and access token',
      async (method) => {
        const user = await registerUser(url);
        const session = await sessionLogin(url, user);
        const token = await tokenLogin(url, user);
        const caller = method === 'session' ? session : token;
        const response = await post(caller, '/api/me/logout-all').expect(204);
        if (method === 'session') expect(sessionCookieOf(response)).toBe('sid=');
        expect(await state(session)).toBe('SESSION_INVALID');
        expect(await state(token)).toBe('TOKEN_REVOKED');
        expectError(await refresh(url, token.refreshToken), 401, 'REFRESH_TOKEN_INVALID');
        // The stamp does not outlive the moment: signing in again works at once.
        expect(await state(await signIn(url, user, method))).toBe(200);
        expect(await auditOf(user.id, 'sessions.revoked_all')).toHaveLength(1);
      },
    );
    it.each(METHODS)('a %s issued between two quick logout-alls is revoked by the second', async (method) => {
      const user = await registerUser(url);
      const first = await tokenLogin(url, user);
      for (let round = 0; round < 3; round++) {
        const caller = await signIn(url, user, method);
        expect(await state(caller)).toBe(200);
        await post(await tokenLogin(url, user), '/api/me/logout-all').expect(204);
        expect(await state(caller)).toBe(method === 'session' ? 'SESSION_INVALID' : 'TOKEN_REVOKED');
      }
      expect(await state(first)).toBe('TOKEN_REVOKED');
    });
  });

  describe('password change', () => {
    it.each(METHODS)(
      'a wrong current password (%s) is 400 on currentPassword and changes nothing',
      async (method) => {
        const user = await registerUser(url);
        const caller = await signIn(url, user, method);
        const other = await sessionLogin(url, user);
        const response = await post(caller, '/api/me/password').send({
          currentPassword: 'not-the-password-1',
          newPassword: NEW_PASSWORD,
        });
        expectError(response, 400, 'VALIDATION_FAILED');
        expect((response.body as { details: { field: string }[] }).details).toEqual([
          { field: 'currentPassword', message: expect.any(String) },
        ]);
        expect(await state(caller)).toBe(200);
        expect(await state(other)).toBe(200);
        await sessionLogin(url, user);
      },
    );

    it('refuses a new password that breaks the policy', async () => {
      const user = await registerUser(url);
      const caller = await tokenLogin(url, user);
      const response = await post(caller, '/api/me/password').send({
        currentPassword: user.password,
        newPassword: 'password1',
      });
      expectError(response, 400, 'VALIDATION_FAILED');
      expect((response.body as { details: { field: string }[] }).details[0].field).toBe('newPassword');
    });

    it('from a cookie session: a new session id, every other sign-in revoked, the old password gone', async () => {
      const user = await registerUser(url);
      const caller = await sessionLogin(url, user);
      const otherSession = await sessionLogin(url, user);
      const token = await tokenLogin(url, user);
      const response = await post(caller, '/api/me/password')
        .send({ currentPassword: user.password, newPassword: NEW_PASSWORD })
        .expect(204);
      const renewed = sessionCookieOf(response);
      expect(renewed).toBeDefined();
      expect(renewed).not.toBe(caller.cookie);
      expect(await state(caller)).toBe('SESSION_INVALID');
      const next = { ...caller, cookie: renewed! };
      next.auth = (test) => test.set('Cookie', renewed!).set('X-CSRF-Token', caller.csrfToken);
      expect(await state(next)).toBe(200);
      expect(await state(otherSession)).toBe('SESSION_INVALID');
      expect(await state(token)).toBe('TOKEN_REVOKED');
      expectError(await refresh(url, token.refreshToken), 401, 'REFRESH_TOKEN_INVALID');
      const oldLogin = await request(url)
        .post('/api/auth/session/login')
        .send({ email: user.email, password: user.password });
      expectError(oldLogin, 401, 'INVALID_CREDENTIALS');
      await sessionLogin(url, { ...user, password: NEW_PASSWORD });
      expect(await auditOf(user.id, 'password.changed')).toHaveLength(1);
    });

    it("from a bearer token: the caller's own family survives and refreshes to a working token", async () => {
      const user = await registerUser(url);
      const caller = await tokenLogin(url, user);
      const otherToken = await tokenLogin(url, user);
      const session = await sessionLogin(url, user);
      await post(caller, '/api/me/password')
        .send({ currentPassword: user.password, newPassword: NEW_PASSWORD })
        .expect(204);
      expect(await state(caller)).toBe('TOKEN_REVOKED');
      const refreshed = await refresh(url, caller.refreshToken);
      expect(refreshed.status).toBe(200);
      const body = refreshed.body as { accessToken: string; refreshToken: string };
      expect(await state(asBearer(body.accessToken, body.refreshToken))).toBe(200);
      expectError(await refresh(url, otherToken.refreshToken), 401, 'REFRESH_TOKEN_INVALID');
      expect(await state(otherToken)).toBe('TOKEN_REVOKED');
      expect(await state(session)).toBe('SESSION_INVALID');
    });
  });

  describe('account deletion', () => {
    it.each(METHODS)('a wrong password (%s) is 400 on password and deletes nothing', async (method) => {
      const user = await registerUser(url);
      const caller = await signIn(url, user, method);
      const response = await del(caller, '/api/me').send({ password: 'not-the-password-1' });
      expectError(response, 400, 'VALIDATION_FAILED');
      expect((response.body as { details: { field: string }[] }).details[0].field).toBe('password');
      expect(await state(caller)).toBe(200);
    });

    it.each(METHODS)('from a %s: the user, its sessions and tokens are gone at once', async (method) => {
      const user = await registerUser(url);
      const session = await sessionLogin(url, user);
      const token = await tokenLogin(url, user);
      const caller = method === 'session' ? session : token;
      await request(url)
        .post('/api/auth/session/login')
        .set('User-Agent', 'personal-agent/1.0')
        .send({ email: user.email, password: 'wrong-password-1' })
        .expect(401);
      await del(caller, '/api/me').send({ password: user.password }).expect(204);
      expect(await state(session)).toBe('SESSION_INVALID');
      expect(await state(token)).toBe('TOKEN_REVOKED');
      expectError(await refresh(url, token.refreshToken), 401, 'REFRESH_TOKEN_INVALID');
      const login = await request(url)
        .post('/api/auth/session/login')
        .send({ email: user.email, password: user.password });
      expectError(login, 401, 'INVALID_CREDENTIALS');
      // The trail keeps the events under the user id, and their client data until AUDIT_RETENTION has
      // passed (account-deletion.e2e-spec.ts), so a deletion does not wipe the traces that preceded it.
      const events = await auditOf(user.id);
      expect(events.map((event) => event.type)).toEqual(
        expect.arrayContaining(['user.registered', 'login.failed', 'user.deleted']),
      );
      expect(events.find((event) => event.type === 'login.failed')).toMatchObject({
        userAgent: 'personal-agent/1.0',
        ip: expect.any(String),
      });
      // The email is free again.
      await registerUser(url, { email: user.email });
    });
  });

  describe('roles and admin', () => {
    it.each(METHODS)(
      'a user (%s) gets 403 FORBIDDEN on admin routes; no credentials get 401',
      async (method) => {
        const user = await registerUser(url);
        const caller = await signIn(url, user, method);
        expectError(await get(caller, '/api/admin/users'), 403, 'FORBIDDEN');
        expectError(await get(caller, '/api/admin/audit'), 403, 'FORBIDDEN');
        expectError(await request(url).get('/api/admin/users'), 401, 'AUTHENTICATION_REQUIRED');
      },
    );

    it('lists users by page, filters by email, and refuses bad paging', async () => {
      const tag = `pager${Date.now()}`;
      for (let i = 0; i < 3; i++) await registerUser(url, { email: uniqueEmail(tag) });
      const caller = await admin();
      const page1 = await get(caller, `/api/admin/users?email=${tag}&limit=2&page=1`).expect(200);
      expect(page1.body).toMatchObject({ total: 3, page: 1, limit: 2 });
      const page2 = await get(caller, `/api/admin/users?email=${tag.toUpperCase()}&limit=2&page=2`).expect(
        200,
      );
      const items = [
        ...(page1.body as { items: { email: string }[] }).items,
        ...(page2.body as { items: { email: string }[] }).items,
      ];
      expect(items).toHaveLength(3);
      expect(new Set(items.map((item) => item.email)).size).toBe(3);
      for (const item of items)
        expect(Object.keys(item).sort()).toEqual([
          'createdAt',
          'displayName',
          'email',
          'emailVerified',
          'id',
          'mfaEnabled',
          'role',
        ]);
      const all = await get(caller, '/api/admin/users').expect(200);
      expect(all.body).toMatchObject({ page: 1, limit: 20 });
      for (const bad of ['limit=101', 'limit=0', 'page=0', 'page=abc', 'unknown=1']) {
        expectError(await get(caller, `/api/admin/users?${bad}`), 400, 'VALIDATION_FAILED');
      }
    });

    it('a role change is seen by an existing session and revokes existing access tokens, on the next request', async () => {
      const user = await registerUser(url);
      const session = await sessionLogin(url, user);
      const token = await tokenLogin(url, user);
      expectError(await get(session, '/api/admin/users'), 403, 'FORBIDDEN');
      const caller = await admin();
      const changed = await caller
        .auth(request(url).patch(`/api/admin/users/${user.id}`))
        .send({ role: 'admin' })
        .expect(200);
      expect((changed.body as { user: { role: string } }).user.role).toBe('admin');
      await get(session, '/api/admin/users').expect(200);
      expect(await state(token)).toBe('TOKEN_REVOKED');
      const refreshed = await refresh(url, token.refreshToken);
      expect(refreshed.status).toBe(200);
      const promoted = asBearer(
        (refreshed.body as { accessToken: string }).accessToken,
        (refreshed.body as { refreshToken: string }).refreshToken,
      );
      await get(promoted, '/api/admin/audit').expect(200);
      await caller
        .auth(request(url).patch(`/api/admin/users/${user.id}`))
        .send({ role: 'user' })
        .expect(200);
      expectError(await get(session, '/api/admin/users'), 403, 'FORBIDDEN');
      expect(await state(promoted)).toBe('TOKEN_REVOKED');
      const events = await auditOf(user.id, 'role.changed');
      expect(events.map((event) => event.detail)).toEqual(
        expect.arrayContaining([expect.objectContaining({ from: 'user', to: 'admin' })]),
      );
    });

    it('role change refuses an unknown role, an unknown user and unknown fields', async () => {
      const user = await registerUser(url);
      const caller = await admin();
      const patch = (id: string) => caller.auth(request(url).patch(`/api/admin/users/${id}`));
      expectError(await patch(user.id).send({ role: 'root' }), 400, 'VALIDATION_FAILED');
      expectError(
        await patch(user.id).send({ role: 'admin', email: 'x@example.com' }),
        400,
        'VALIDATION_FAILED',
      );
      expectError(
        await patch('3f1b2c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d').send({ role: 'admin' }),
        404,
        'NOT_FOUND',
      );
    });

    it('admin revoke logs the user out everywhere, effective on the next request', async () => {
      const user = await registerUser(url);
      const session = await sessionLogin(url, user);
      const token = await tokenLogin(url, user);
      const caller = await admin();
      await post(caller, `/api/admin/users/${user.id}/revoke`).expect(204);
      expect(await state(session)).toBe('SESSION_INVALID');
      expect(await state(token)).toBe('TOKEN_REVOKED');
      expectError(await refresh(url, token.refreshToken), 401, 'REFRESH_TOKEN_INVALID');
      expect(await state(caller)).toBe(200);
      expectError(
        await post(caller, '/api/admin/users/3f1b2c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d/revoke'),
        404,
        'NOT_FOUND',
      );
    });

    it('an admin session needs CSRF on admin writes', async () => {
      const user = await registerUser(url);
      const session = await sessionLogin(url, ADMIN);
      const response = await request(url)
        .post(`/api/admin/users/${user.id}/revoke`)
        .set('Cookie', session.cookie);
      expectError(response, 403, 'CSRF_FAILED');
    });

    it('never demotes the last admin, even when two admins demote each other at once', async () => {
      const setRole = (caller: Caller, id: string, role: string) =>
        caller.auth(request(url).patch(`/api/admin/users/${id}`)).send({ role });
      const root = await admin();
      const rootId = ((await get(root, '/api/me').expect(200)).body as { user: { id: string } }).user.id;
      const refused = await setRole(root, rootId, 'user');
      expectError(refused, 400, 'VALIDATION_FAILED');
      expect((refused.body as { details: { field: string }[] }).details[0].field).toBe('role');
      await get(await admin(), '/api/admin/users').expect(200);

      const other = await registerUser(url);
      await setRole(root, other.id, 'admin').expect(200);
      const second = await signIn(url, other, 'token');
      const [rootDemotes, secondDemotes] = await Promise.all([
        setRole(root, other.id, 'user'),
        setRole(second, rootId, 'user'),
      ]);
      // One wins; the other is refused as the last admin (400), or, when the winner committed first, its
      // demoted caller's token is already revoked (401). Never both.
      const statuses = [rootDemotes.status, secondDemotes.status];
      expect(statuses.filter((status) => status === 200)).toHaveLength(1);
      expect(statuses.filter((status) => status === 400 || status === 401)).toHaveLength(1);
      // Whoever kept the role gives it back, so the other tests still sign in as an admin.
      if (secondDemotes.status === 200) {
        await setRole(await signIn(url, other, 'token'), rootId, 'admin').expect(200);
        await setRole(await admin(), other.id, 'user').expect(200);
      }
      await get(await admin(), '/api/admin/users').expect(200);
      expectError(await get(await signIn(url, other, 'token'), '/api/admin/users'), 403, 'FORBIDDEN');
    });
  });

  describe('audit trail', () => {
    it('records the events of a life cycle with ip and user agent, filterable by user and type', async () => {
      const user = await registerUser(url);
      await request(url)
        .post('/api/auth/session/login')
        .set('User-Agent', 'audit-agent/2.0')
        .send({ email: user.email, password: 'wrong-password-1' })
        .expect(401);
      const session = await sessionLogin(url, user);
      const token = await tokenLogin(url, user);
      await refresh(url, token.refreshToken);
      await post(session, '/api/auth/session/logout').expect(204);
      const events = await auditOf(user.id);
      const types = events.map((event) => event.type);
      expect(types).toEqual(
        expect.arrayContaining([
          'user.registered',
          'login.failed',
          'login.succeeded',
          'token.refreshed',
          'logout',
        ]),
      );
      const failed = events.find((event) => event.type === 'login.failed')!;
      expect(failed).toMatchObject({ userId: user.id, userAgent: 'audit-agent/2.0', ip: expect.any(String) });
      expect(Object.keys(failed).sort()).toEqual(['at', 'detail', 'id', 'ip', 'type', 'userAgent', 'userId']);
      const onlyFailed = await auditOf(user.id, 'login.failed');
      expect(onlyFailed.every((event) => event.type === 'login.failed')).toBe(true);
      const caller = await admin();
      expectError(await get(caller, '/api/admin/audit?type=nope'), 400, 'VALIDATION_FAILED');
      expectError(await get(caller, '/api/admin/audit?userId=nope'), 400, 'VALIDATION_FAILED');
    });
  });

  it('documents every registry route with its security schemes', async () => {
    const document = (await request(url).get('/docs-json').expect(200)).body as {
      paths: Record<string, Record<string, { security?: Record<string, unknown>[]; responses: object }>>;
    };
    const expectations: [string, string, string[]][] = [
      ['/api/me', 'get', ['session', 'bearer']],
      ['/api/me', 'delete', ['session', 'csrf', 'bearer']],
      ['/api/me/sessions', 'get', ['session', 'bearer']],
      ['/api/me/sessions/{id}', 'delete', ['session', 'csrf', 'bearer']],
      ['/api/me/logout-all', 'post', ['session', 'csrf', 'bearer']],
      ['/api/me/password', 'post', ['session', 'csrf', 'bearer']],
      ['/api/admin/users', 'get', ['session', 'bearer']],
      ['/api/admin/users/{id}', 'patch', ['session', 'csrf', 'bearer']],
      ['/api/admin/users/{id}/revoke', 'post', ['session', 'csrf', 'bearer']],
      ['/api/admin/audit', 'get', ['session', 'bearer']],
    ];
    for (const [path, method, schemes] of expectations) {
      const operation = document.paths[path]?.[method];
      expect(operation).toBeDefined();
      expect(operation.security?.flatMap((entry) => Object.keys(entry)).sort()).toEqual([...schemes].sort());
      expect(Object.keys(operation.responses)).toEqual(expect.arrayContaining(['401']));
    }
  });

  it('a fresh registration cannot claim a role', async () => {
    const response = await request(url)
      .post('/api/auth/register')
      .send({ email: uniqueEmail(), password: STRONG_PASSWORD, role: 'admin' });
    expectError(response, 400, 'VALIDATION_FAILED');
  });
});
