import request from 'supertest';
import { registerUser, RegisteredUser, STRONG_PASSWORD, uniqueEmail } from './support/factories';
import { expectError, refresh, sessionLogin, sleep, tokenLogin } from './support/clients';
import { ensureBuilt, Instance, shareDatabase, SharedDatabase, spawnInstance } from './support/instances';
import { createTestStorage, TestStorage } from './support/test-app';

const ADMIN = { email: uniqueEmail('admin'), password: 'harbor-violet-admin-73' };
const GRACE_SECONDS = 2;

/**
 * Two instances of the built service as separate processes on one database (and one Redis in PostgreSQL
 * mode; in embedded mode the test process serves one PGlite database to both, and the database stands in
 * for Redis). Whatever one instance does, the other sees on its very next request.
 */
describe('scale-out: two instances on one database and one Redis', () => {
  let storage: TestStorage;
  let shared: SharedDatabase;
  let a: Instance;
  let b: Instance;

  beforeAll(async () => {
    ensureBuilt();
    storage = await createTestStorage();
    shared = await shareDatabase(storage.env);
    const env = {
      ...shared.env,
      // Instances behind one address share it: it is the tokens' issuer and the origin CSRF checks expect.
      PUBLIC_URL: 'http://auth.test',
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      LOGIN_MAX_FAILURES: '3',
      REFRESH_REUSE_GRACE: `${GRACE_SECONDS}s`,
    };
    // Started together: the migration lock makes them take turns on the schema.
    [a, b] = await Promise.all([spawnInstance(env), spawnInstance(env)]);
  }, 180_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await shared?.close();
    await storage?.drop();
  });

  /** A user with a live cookie session and a live token family, both obtained from instance A. */
  async function signedInEverywhere(): Promise<{
    user: RegisteredUser;
    session: { cookie: string; csrfToken: string };
    tokens: { accessToken: string; refreshToken: string };
  }> {
    const user = await registerUser(a.url);
    const session = await sessionLogin(a.url, user);
    const tokens = await tokenLogin(a.url, user);
    return { user, session, tokens };
  }

  describe('what exists in both methods', () => {
    it('serves a session started on one instance from the other, and a logout on one holds on the other', async () => {
      const user = await registerUser(a.url);
      const session = await sessionLogin(a.url, user);
      const onB = await request(b.url).get('/api/auth/session').set('Cookie', session.cookie);
      expect(onB.status).toBe(200);
      expect(onB.body).toMatchObject({ user: { email: user.email }, csrfToken: session.csrfToken });

      await request(b.url)
        .post('/api/auth/session/logout')
        .set('Cookie', session.cookie)
        .set('X-CSRF-Token', session.csrfToken)
        .expect(204);
      expectError(
        await request(a.url).get('/api/auth/session').set('Cookie', session.cookie),
        401,
        'SESSION_INVALID',
      );
    });

    it('accepts a token from one instance on the other, and a token logout on one revokes it on the other', async () => {
      const user = await registerUser(b.url);
      const first = await tokenLogin(a.url, user);
      const second = await tokenLogin(b.url, user);
      // Logging out on B with A's access token: B verified it (else 401) and revoked its family.
      await request(b.url)
        .post('/api/auth/token/logout')
        .set('Authorization', `Bearer ${first.accessToken}`)
        .send({})
        .expect(204);
      const again = await request(a.url)
        .post('/api/auth/token/logout')
        .set('Authorization', `Bearer ${first.accessToken}`)
        .send({});
      expectError(again, 401, 'TOKEN_REVOKED');
      expectError(await refresh(a.url, first.refreshToken), 401, 'REFRESH_TOKEN_INVALID');
      // The other family of the same user is untouched.
      expect((await refresh(a.url, second.refreshToken)).status).toBe(200);
    });

    it('rotates a refresh token on one instance and replays the same answer on the other within the grace window', async () => {
      const user = await registerUser(a.url);
      const login = await tokenLogin(a.url, user);
      const rotated = await refresh(a.url, login.refreshToken);
      expect(rotated.status).toBe(200);
      const replayed = await refresh(b.url, login.refreshToken);
      expect(replayed.status).toBe(200);
      expect(replayed.body).toMatchObject({
        refreshToken: rotated.body.refreshToken,
        accessToken: rotated.body.accessToken,
      });
      const next = await refresh(b.url, rotated.body.refreshToken as string);
      expect(next.status).toBe(200);
      expect(next.body.refreshToken).not.toBe(rotated.body.refreshToken);
    });

    it('detects reuse on one instance and revokes the family on both', async () => {
      const user = await registerUser(a.url);
      const login = await tokenLogin(a.url, user);
      const rotated = await refresh(a.url, login.refreshToken);
      expect(rotated.status).toBe(200);
      await sleep(GRACE_SECONDS * 1000 + 500);
      expectError(await refresh(b.url, login.refreshToken), 401, 'REFRESH_TOKEN_REUSED');
      expectError(await refresh(a.url, rotated.body.refreshToken as string), 401, 'REFRESH_TOKEN_INVALID');
      const revoked = await request(a.url)
        .post('/api/auth/token/logout')
        .set('Authorization', `Bearer ${rotated.body.accessToken as string}`)
        .send({});
      expectError(revoked, 401, 'TOKEN_REVOKED');
    });

    it('counts login failures across instances: the lock refuses even the right password on both', async () => {
      const user = await registerUser(a.url);
      const wrong = { email: user.email, password: `${STRONG_PASSWORD}-wrong` };
      for (const instance of [a, b, a]) {
        const failed = await request(instance.url).post('/api/auth/token/login').send(wrong);
        expectError(failed, 401, 'INVALID_CREDENTIALS');
      }
      for (const instance of [b, a]) {
        const locked = await request(instance.url)
          .post('/api/auth/session/login')
          .send({ email: user.email, password: user.password });
        expectError(locked, 429, 'RATE_LIMITED');
        expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
      }
    });
  });

  describe('the registry routes', () => {
    async function expectSignedOut(
      session: { cookie: string },
      tokens: { accessToken: string; refreshToken: string },
    ): Promise<void> {
      expectError(await request(b.url).get('/api/me').set('Cookie', session.cookie), 401, 'SESSION_INVALID');
      expectError(
        await request(b.url).get('/api/me').set('Authorization', `Bearer ${tokens.accessToken}`),
        401,
        'TOKEN_REVOKED',
      );
      expectError(await refresh(b.url, tokens.refreshToken), 401, 'REFRESH_TOKEN_INVALID');
    }

    async function adminSession(): Promise<{ cookie: string; csrfToken: string }> {
      return sessionLogin(a.url, ADMIN);
    }

    it('answers GET /api/me on the other instance by both methods', async () => {
      const { user, session, tokens } = await signedInEverywhere();
      const bySession = await request(b.url).get('/api/me').set('Cookie', session.cookie).expect(200);
      expect(bySession.body).toMatchObject({ user: { id: user.id }, auth: { method: 'session' } });
      const byToken = await request(b.url)
        .get('/api/me')
        .set('Authorization', `Bearer ${tokens.accessToken}`)
        .expect(200);
      expect(byToken.body).toMatchObject({ user: { id: user.id }, auth: { method: 'token' } });
    });

    it('logout-all on one instance signs the user out on the other at once', async () => {
      const { session, tokens } = await signedInEverywhere();
      const other = await sessionLogin(b.url, (await signedInEverywhere()).user);
      await request(a.url)
        .post('/api/me/logout-all')
        .set('Cookie', session.cookie)
        .set('X-CSRF-Token', session.csrfToken)
        .expect(204);
      await expectSignedOut(session, tokens);
      // Another user's session is not touched.
      await request(b.url).get('/api/me').set('Cookie', other.cookie).expect(200);
    });

    it('revoking one session by id on one instance ends it on the other', async () => {
      const { session, tokens } = await signedInEverywhere();
      const listed = await request(b.url)
        .get('/api/me/sessions')
        .set('Authorization', `Bearer ${tokens.accessToken}`)
        .expect(200);
      const cookieSession = (listed.body as { id: string; method: string }[]).find(
        (entry) => entry.method === 'session',
      );
      expect(cookieSession).toBeDefined();
      await request(a.url)
        .delete(`/api/me/sessions/${cookieSession!.id}`)
        .set('Authorization', `Bearer ${tokens.accessToken}`)
        .expect(204);
      expectError(await request(b.url).get('/api/me').set('Cookie', session.cookie), 401, 'SESSION_INVALID');
      await request(b.url).get('/api/me').set('Authorization', `Bearer ${tokens.accessToken}`).expect(200);
    });

    it('a password change on one instance revokes the other sessions and tokens on the other', async () => {
      const { user, session, tokens } = await signedInEverywhere();
      const current = await sessionLogin(a.url, user);
      const changed = await request(a.url)
        .post('/api/me/password')
        .set('Cookie', current.cookie)
        .set('X-CSRF-Token', current.csrfToken)
        .send({ currentPassword: user.password, newPassword: 'quartz-meadow-signal-58' })
        .expect(204);
      await expectSignedOut(session, tokens);
      // The caller's session carries on under a new id, on either instance.
      const renewed = (changed.headers['set-cookie'] as unknown as string[])
        .find((value) => value.startsWith('sid='))!
        .split(';')[0];
      expect(renewed).not.toBe(current.cookie);
      await request(b.url).get('/api/me').set('Cookie', renewed).expect(200);
      expectError(await request(b.url).get('/api/me').set('Cookie', current.cookie), 401, 'SESSION_INVALID');
    });

    it('an admin revoke on one instance holds on the other', async () => {
      const { user, session, tokens } = await signedInEverywhere();
      const admin = await adminSession();
      await request(a.url)
        .post(`/api/admin/users/${user.id}/revoke`)
        .set('Cookie', admin.cookie)
        .set('X-CSRF-Token', admin.csrfToken)
        .expect(204);
      await expectSignedOut(session, tokens);
    });

    it('a role change on one instance applies on the other at the next request', async () => {
      const { user, session, tokens } = await signedInEverywhere();
      expectError(
        await request(b.url).get('/api/admin/users').set('Cookie', session.cookie),
        403,
        'FORBIDDEN',
      );
      const admin = await adminSession();
      await request(a.url)
        .patch(`/api/admin/users/${user.id}`)
        .set('Cookie', admin.cookie)
        .set('X-CSRF-Token', admin.csrfToken)
        .send({ role: 'admin' })
        .expect(200);
      await request(b.url).get('/api/admin/users').set('Cookie', session.cookie).expect(200);
      // The access token carries the old role, so it is revoked; a refresh gets one with the new role.
      expectError(
        await request(b.url).get('/api/me').set('Authorization', `Bearer ${tokens.accessToken}`),
        401,
        'TOKEN_REVOKED',
      );
      const refreshed = await refresh(b.url, tokens.refreshToken);
      expect(refreshed.status).toBe(200);
      expect(refreshed.body).toMatchObject({ user: { role: 'admin' } });
    });

    it('an account deleted on one instance is gone on the other at once', async () => {
      const { user, session, tokens } = await signedInEverywhere();
      const current = await sessionLogin(a.url, user);
      await request(a.url)
        .delete('/api/me')
        .set('Cookie', current.cookie)
        .set('X-CSRF-Token', current.csrfToken)
        .send({ password: user.password })
        .expect(204);
      await expectSignedOut(session, tokens);
      expectError(
        await request(b.url)
          .post('/api/auth/token/login')
          .send({ email: user.email, password: user.password }),
        401,
        'INVALID_CREDENTIALS',
      );
    });
  });
});
