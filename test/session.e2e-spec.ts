import { createHmac, randomBytes } from 'node:crypto';
import request, { Response } from 'supertest';
import { BackendUnavailableError } from '../src/common/app-error';
import { REDIS, RedisClient } from '../src/redis/redis.module';
import { SessionService } from '../src/session/session.service';
import { SessionStore } from '../src/session/session.store';
import { UsersService } from '../src/users/users.service';
import { expectError } from './support/clients';
import { registerUser, RegisteredUser } from './support/factories';
import { createTestStorage, Env, RunningApp, startApp, TestStorage } from './support/test-app';

const EVIL_ORIGIN = 'https://evil.example';

function setCookies(response: Response): string[] {
  const header = response.headers['set-cookie'] as unknown as string[] | string | undefined;
  if (header === undefined) return [];
  return Array.isArray(header) ? header : [header];
}

/** The device cookie every login sets beside the session cookie (limits.e2e-spec.ts tests what it does). */
const DEVICE_COOKIE = /^(__Host-)?did=/;

/** The `name=value` pair of the one session cookie a response set, to send back by hand. */
function onlyCookie(response: Response): string {
  const cookies = setCookies(response).filter((cookie) => !DEVICE_COOKIE.test(cookie));
  expect(cookies).toHaveLength(1);
  return cookies[0].split(';')[0];
}

function attributesOf(setCookie: string): string[] {
  return setCookie
    .split(';')
    .slice(1)
    .map((part) => part.trim().split('=')[0].toLowerCase());
}

function sessionIdOf(cookie: string): string {
  const value = decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1));
  return value.slice(2, value.lastIndexOf('.'));
}

/** Signs a cookie the way express-session does, for an id the "attacker" chose. */
function signedCookie(name: string, id: string, secret: string): string {
  const signature = createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, '');
  return `${name}=${encodeURIComponent(`s:${id}.${signature}`)}`;
}

interface LoggedIn {
  cookie: string;
  csrfToken: string;
  body: Record<string, unknown>;
}

async function login(url: string, user: RegisteredUser, cookie?: string): Promise<LoggedIn> {
  const call = request(url).post('/api/auth/session/login');
  if (cookie) call.set('Cookie', cookie);
  const response = await call.send({ email: user.email, password: user.password }).expect(200);
  return { cookie: onlyCookie(response), csrfToken: response.body.csrfToken, body: response.body };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function bootWith(extra: Env): Promise<{ storage: TestStorage; running: RunningApp }> {
  const storage = await createTestStorage();
  const running = await startApp({ ...storage.env, ...extra });
  return { storage, running };
}

describe('cookie sessions', () => {
  let storage: TestStorage;
  let running: RunningApp;
  const api = () => request(running.url);

  beforeAll(async () => {
    storage = await createTestStorage();
    running = await startApp(storage.env);
  });

  afterAll(async () => {
    await running.close();
    await storage.drop();
  });

  describe('login', () => {
    it('sets one session cookie: sid, HttpOnly, Path=/, SameSite=Lax, no Domain, no Secure (and the device cookie)', async () => {
      const user = await registerUser(running.url);
      const response = await api()
        .post('/api/auth/session/login')
        .send({ email: user.email, password: user.password })
        .expect(200);
      const device = setCookies(response).find((cookie) => DEVICE_COOKIE.test(cookie));
      expect(device).toMatch(
        /^did=[^;]+; Max-Age=31536000; Path=\/; Expires=[^;]+; HttpOnly; SameSite=Strict$/,
      );
      const cookies = setCookies(response).filter((cookie) => !DEVICE_COOKIE.test(cookie));
      expect(cookies).toHaveLength(1);
      expect(cookies[0]).toMatch(/^sid=s%3A[A-Za-z0-9_-]{32}\./);
      expect(cookies[0]).toMatch(/; Path=\/(;|$)/);
      expect(cookies[0]).toMatch(/; HttpOnly(;|$)/);
      expect(cookies[0]).toMatch(/; SameSite=Lax(;|$)/);
      expect(attributesOf(cookies[0])).not.toContain('domain');
      expect(attributesOf(cookies[0])).not.toContain('secure');
      expect(response.body).toEqual({
        user: expect.objectContaining({ id: user.id, email: user.email, role: 'user' }),
        csrfToken: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
        expiresAt: expect.stringMatching(/Z$/),
      });
      expect(JSON.stringify(response.body)).not.toContain(sessionIdOf(onlyCookie(response)));
    });

    it('refuses a wrong password or an unknown email with 401 INVALID_CREDENTIALS and no cookie', async () => {
      const user = await registerUser(running.url);
      for (const body of [
        { email: user.email, password: `${user.password}x` },
        { email: `nobody.${randomBytes(3).toString('hex')}@example.com`, password: user.password },
      ]) {
        const response = await api().post('/api/auth/session/login').send(body);
        expectError(response, 401, 'INVALID_CREDENTIALS');
        expect(setCookies(response)).toEqual([]);
      }
    });

    it('refuses a body that is not {email, password} with 400 VALIDATION_FAILED', async () => {
      const user = await registerUser(running.url);
      const response = await api()
        .post('/api/auth/session/login')
        .send({ email: user.email, password: user.password, role: 'admin' });
      expectError(response, 400, 'VALIDATION_FAILED');
      expect(setCookies(response)).toEqual([]);
    });

    it('refuses a cross-site Origin or Sec-Fetch-Site (login CSRF) with 403 and no cookie', async () => {
      const user = await registerUser(running.url);
      const body = { email: user.email, password: user.password };
      const foreign = await api().post('/api/auth/session/login').set('Origin', EVIL_ORIGIN).send(body);
      expectError(foreign, 403, 'CSRF_FAILED');
      expect(setCookies(foreign)).toEqual([]);
      const crossSite = await api()
        .post('/api/auth/session/login')
        .set('Sec-Fetch-Site', 'cross-site')
        .send(body);
      expectError(crossSite, 403, 'CSRF_FAILED');
      await api().post('/api/auth/session/login').set('Origin', running.url).send(body).expect(200);
    });

    it('always issues a new id: a cookie held before login never becomes authenticated', async () => {
      const user = await registerUser(running.url);
      const first = await login(running.url, user);
      await api()
        .post('/api/auth/session/logout')
        .set('Cookie', first.cookie)
        .set('X-CSRF-Token', first.csrfToken)
        .expect(204);

      const second = await login(running.url, user, first.cookie);
      expect(sessionIdOf(second.cookie)).not.toBe(sessionIdOf(first.cookie));
      expectError(await api().get('/api/auth/session').set('Cookie', first.cookie), 401, 'SESSION_INVALID');

      // Logging in over a live session replaces it too.
      const other = await registerUser(running.url);
      const third = await login(running.url, other, second.cookie);
      expect(sessionIdOf(third.cookie)).not.toBe(sessionIdOf(second.cookie));
      expectError(await api().get('/api/auth/session').set('Cookie', second.cookie), 401, 'SESSION_INVALID');
      const current = await api().get('/api/auth/session').set('Cookie', third.cookie).expect(200);
      expect(current.body.user.id).toBe(other.id);
    });
  });

  describe('anonymous requests', () => {
    it('never get a cookie', async () => {
      for (const response of [
        await api().get('/health/live'),
        await api().get('/api/auth/session'),
        await api().post('/api/auth/session/logout'),
        await api().get('/api/nothing-here'),
        await api().post('/api/auth/register').send({}),
      ]) {
        expect(setCookies(response)).toEqual([]);
      }
    });

    it('load no session, and a login without a cookie still gets one', async () => {
      // express-session calls the store's generate for every request it handles that has no session.
      const store = running.app.get<SessionStore & { generate(req: unknown): void }>(SessionStore);
      const generate = store.generate.bind(store);
      let generated = 0;
      store.generate = (req: unknown) => {
        generated += 1;
        generate(req);
      };
      try {
        const user = await registerUser(running.url);
        const token = await api()
          .post('/api/auth/token/login')
          .send({ email: user.email, password: user.password })
          .expect(200);
        await api().get('/health/live').expect(200);
        await api()
          .get('/api/me')
          .set('Authorization', `Bearer ${token.body.accessToken as string}`)
          .expect(200);
        expect(generated).toBe(0);
        const session = await login(running.url, user);
        expect(generated).toBeGreaterThan(0);
        await api().get('/api/auth/session').set('Cookie', session.cookie).expect(200);
      } finally {
        store.generate = generate;
      }
    });

    it('answer 401 AUTHENTICATION_REQUIRED on session routes', async () => {
      expectError(await api().get('/api/auth/session'), 401, 'AUTHENTICATION_REQUIRED');
      expectError(await api().post('/api/auth/session/logout'), 401, 'AUTHENTICATION_REQUIRED');
    });
  });

  describe('GET /api/auth/session', () => {
    it('returns the user, the CSRF token and the lifetimes, without writing a cookie', async () => {
      const user = await registerUser(running.url);
      const session = await login(running.url, user);
      const response = await api().get('/api/auth/session').set('Cookie', session.cookie).expect(200);
      expect(response.body).toEqual({
        user: expect.objectContaining({ id: user.id, email: user.email, role: 'user' }),
        csrfToken: session.csrfToken,
        createdAt: expect.stringMatching(/Z$/),
        expiresAt: session.body.expiresAt,
        idleExpiresAt: expect.stringMatching(/Z$/),
      });
      expect(setCookies(response)).toEqual([]);
    });

    it('gives expiresAt as the absolute limit, createdAt + SESSION_ABSOLUTE_TTL, and idleExpiresAt as the idle end, everywhere', async () => {
      const user = await registerUser(running.url);
      const session = await login(running.url, user);
      const current = (await api().get('/api/auth/session').set('Cookie', session.cookie).expect(200)).body;
      const me = (await api().get('/api/me').set('Cookie', session.cookie).expect(200)).body;
      const createdAt = Date.parse(current.createdAt);
      const absolute = new Date(createdAt + 7 * 86400_000).toISOString();
      expect(session.body.expiresAt).toBe(absolute);
      expect(current.expiresAt).toBe(absolute);
      expect(me.auth.expiresAt).toBe(absolute);
      expect(Date.parse(current.idleExpiresAt)).toBeGreaterThanOrEqual(createdAt + 24 * 3600_000);
      expect(Date.parse(current.idleExpiresAt)).toBeLessThan(Date.parse(absolute));
    });

    it('does not write to the store on every request', async () => {
      const user = await registerUser(running.url);
      const session = await login(running.url, user);
      const store = running.app.get(SessionStore);
      const set = jest.spyOn(store, 'set');
      try {
        for (let i = 0; i < 5; i += 1) {
          await api().get('/api/auth/session').set('Cookie', session.cookie).expect(200);
        }
        expect(set).not.toHaveBeenCalled();
      } finally {
        set.mockRestore();
      }
    });

    it.each([
      ['an unsigned id', (cookie: string) => `sid=${sessionIdOf(cookie)}`],
      [
        'a forged signature',
        (cookie: string) => `sid=${encodeURIComponent(`s:${sessionIdOf(cookie)}.AAAA`)}`,
      ],
      [
        'a tampered id',
        (cookie: string) => {
          const id = sessionIdOf(cookie);
          return cookie.replace(id, `${id[0] === 'A' ? 'B' : 'A'}${id.slice(1)}`);
        },
      ],
      ['garbage', () => 'sid=not-a-session'],
    ])('answers %s with 401 SESSION_INVALID', async (_label, forge) => {
      const user = await registerUser(running.url);
      const session = await login(running.url, user);
      const response = await api().get('/api/auth/session').set('Cookie', forge(session.cookie));
      expectError(response, 401, 'SESSION_INVALID');
    });
  });

  describe('logout', () => {
    it('clears the cookie with the same attributes, and a replay of the old cookie is 401', async () => {
      const user = await registerUser(running.url);
      const session = await login(running.url, user);
      const response = await api()
        .post('/api/auth/session/logout')
        .set('Cookie', session.cookie)
        .set('X-CSRF-Token', session.csrfToken)
        .expect(204);
      const cleared = setCookies(response);
      expect(cleared).toHaveLength(1);
      expect(cleared[0]).toMatch(/^sid=;/);
      expect(cleared[0]).toMatch(/Expires=Thu, 01 Jan 1970/);
      expect(cleared[0]).toMatch(/; Path=\/(;|$)/);
      expect(cleared[0]).toMatch(/; HttpOnly(;|$)/);
      expect(cleared[0]).toMatch(/; SameSite=Lax(;|$)/);
      expect(attributesOf(cleared[0])).not.toContain('domain');

      expectError(await api().get('/api/auth/session').set('Cookie', session.cookie), 401, 'SESSION_INVALID');
      const replay = await api()
        .post('/api/auth/session/logout')
        .set('Cookie', session.cookie)
        .set('X-CSRF-Token', session.csrfToken);
      expectError(replay, 401, 'SESSION_INVALID');
      expect(await running.app.get(SessionService).list(user.id)).toEqual([]);
    });
  });

  describe('CSRF on unsafe requests', () => {
    let user: RegisteredUser;
    let session: LoggedIn;

    beforeAll(async () => {
      user = await registerUser(running.url);
      session = await login(running.url, user);
    });

    const logout = () => api().post('/api/auth/session/logout').set('Cookie', session.cookie);

    it('refuses a missing token', async () => {
      expectError(await logout(), 403, 'CSRF_FAILED');
    });

    it('refuses a wrong token', async () => {
      expectError(await logout().set('X-CSRF-Token', `${session.csrfToken.slice(1)}x`), 403, 'CSRF_FAILED');
    });

    it("refuses another session's token", async () => {
      const other = await login(running.url, await registerUser(running.url));
      expectError(await logout().set('X-CSRF-Token', other.csrfToken), 403, 'CSRF_FAILED');
    });

    it('refuses a cross-site Origin even with the right token', async () => {
      const response = await logout().set('X-CSRF-Token', session.csrfToken).set('Origin', EVIL_ORIGIN);
      expectError(response, 403, 'CSRF_FAILED');
    });

    it('refuses Sec-Fetch-Site: cross-site even with the right token', async () => {
      const response = await logout()
        .set('X-CSRF-Token', session.csrfToken)
        .set('Sec-Fetch-Site', 'cross-site');
      expectError(response, 403, 'CSRF_FAILED');
    });

    it('lets the right token from the same origin through, the session intact after the refusals', async () => {
      await logout().set('X-CSRF-Token', session.csrfToken).set('Origin', running.url).expect(204);
    });
  });

  describe('revocation, read from the users table on every request', () => {
    it('rejects sessions that authenticated before the user was revoked, and accepts later ones', async () => {
      const user = await registerUser(running.url);
      const before = await login(running.url, user);
      await running.app.get(UsersService).revokeAll(user.id);
      expectError(await api().get('/api/auth/session').set('Cookie', before.cookie), 401, 'SESSION_INVALID');
      await sleep(5);
      const after = await login(running.url, user);
      await api().get('/api/auth/session').set('Cookie', after.cookie).expect(200);
    });

    it('rejects the session of a deleted user', async () => {
      const user = await registerUser(running.url);
      const session = await login(running.url, user);
      const users = running.app.get(UsersService);
      await users.transaction((manager) => users.delete(user.id, manager));
      expectError(await api().get('/api/auth/session').set('Cookie', session.cookie), 401, 'SESSION_INVALID');
    });
  });

  describe('the per-user session index', () => {
    it('lists, revokes one and revokes all but one of a user’s sessions', async () => {
      const user = await registerUser(running.url);
      const sessions = running.app.get(SessionService);
      const logins = [
        await login(running.url, user),
        await login(running.url, user),
        await login(running.url, user),
      ];
      const ids = await Promise.all(
        logins.map(
          async (one) =>
            (await api().get('/api/auth/session').set('Cookie', one.cookie).expect(200)).body as {
              csrfToken: string;
            },
        ),
      );
      expect(ids).toHaveLength(3);

      const listed = await sessions.list(user.id);
      expect(listed).toHaveLength(3);
      for (const entry of listed) {
        expect(entry).toEqual({
          id: expect.stringMatching(/^[0-9a-f-]{36}$/),
          userAgent: null,
          ip: expect.any(String),
          createdAt: expect.any(Date),
          lastSeenAt: expect.any(Date),
          expiresAt: expect.any(Date),
        });
        for (const one of logins) expect(JSON.stringify(entry)).not.toContain(sessionIdOf(one.cookie));
      }

      expect(await sessions.revoke(user.id, listed[0].id)).toBe(true);
      expect(await sessions.revoke(user.id, listed[0].id)).toBe(false);
      expect(await sessions.revoke((await registerUser(running.url)).id, listed[1].id)).toBe(false);
      const statuses = await Promise.all(
        logins.map(async (one) => (await api().get('/api/auth/session').set('Cookie', one.cookie)).status),
      );
      expect(statuses.filter((status) => status === 401)).toHaveLength(1);

      expect(await sessions.revokeAll(user.id, listed[2].id)).toBe(1);
      expect((await sessions.list(user.id)).map((entry) => entry.id)).toEqual([listed[2].id]);
      expect(await sessions.revokeAll(user.id)).toBe(1);
      for (const one of logins) {
        expectError(await api().get('/api/auth/session').set('Cookie', one.cookie), 401, 'SESSION_INVALID');
      }
    });
  });

  describe('the store', () => {
    it('answers 503 SERVICE_UNAVAILABLE when it cannot be reached, never a 200', async () => {
      const session = await login(running.url, await registerUser(running.url));
      const store = running.app.get(SessionStore);
      const get = jest
        .spyOn(store, 'get')
        .mockImplementation((_sid, callback) => callback(new BackendUnavailableError('sessionStore')));
      try {
        const response = await api().get('/api/auth/session').set('Cookie', session.cookie);
        expectError(response, 503, 'SERVICE_UNAVAILABLE');
      } finally {
        get.mockRestore();
      }
      // A store failure must not log the user out: the session is intact once the store answers again.
      await api().get('/api/auth/session').set('Cookie', session.cookie).expect(200);
    });

    it('keeps Redis keys under the prefix with the session lifetime, when Redis is configured', async () => {
      const redis = running.app.get<RedisClient | null>(REDIS);
      if (!storage.redis || !redis) {
        expect(redis).toBeNull();
        return;
      }
      const user = await registerUser(running.url);
      const session = await login(running.url, user);
      const prefix = storage.env.REDIS_KEY_PREFIX!;
      const ttl = await redis.ttl(`${prefix}sess:${sessionIdOf(session.cookie)}`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(24 * 3600);
      const index = await redis.hGetAll(`${prefix}user-sessions:{${user.id}}`);
      expect(Object.values(index)).toEqual([sessionIdOf(session.cookie)]);
      expect(await redis.ttl(`${prefix}user-sessions:{${user.id}}`)).toBeGreaterThan(0);
    });

    it('stores a Redis session in under 400 bytes, and still loads one stored in the earlier named form', async () => {
      const redis = running.app.get<RedisClient | null>(REDIS);
      if (!storage.redis || !redis) return;
      const user = await registerUser(running.url);
      const session = await login(running.url, user);
      const key = `${storage.env.REDIS_KEY_PREFIX!}sess:${sessionIdOf(session.cookie)}`;
      const stored = JSON.parse((await redis.get(key))!) as unknown[];
      expect(stored[0]).toBe(user.id);
      expect(Number(await redis.sendCommand(['MEMORY', 'USAGE', key, 'SAMPLES', '0']))).toBeLessThanOrEqual(
        400,
      );
      const [userId, publicId, authAt, createdAt, lastSeenAt, csrfToken, userAgent, ip, expires] = stored;
      const named = {
        userId,
        publicId,
        authAt,
        createdAt,
        lastSeenAt,
        csrfToken,
        userAgent,
        ip,
        cookie: { originalMaxAge: 86_400_000, expires: new Date(expires as number).toISOString() },
      };
      await redis.set(key, JSON.stringify(named), { KEEPTTL: true });
      const current = await api().get('/api/auth/session').set('Cookie', session.cookie).expect(200);
      expect(current.body.user.id).toBe(user.id);
      expect(current.body.csrfToken).toBe(csrfToken);
    });
  });

  describe('OpenAPI', () => {
    it('documents the session routes with the cookie scheme and their errors', async () => {
      const document = (await api().get('/docs-json').expect(200)).body;
      const loginRoute = document.paths['/api/auth/session/login'].post;
      expect(Object.keys(loginRoute.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '403']));
      expect(document.paths['/api/auth/session'].get.security).toEqual([{ session: [] }]);
      const logoutRoute = document.paths['/api/auth/session/logout'].post;
      expect(logoutRoute.security).toEqual([{ session: [], csrf: [] }]);
      expect(Object.keys(logoutRoute.responses)).toEqual(expect.arrayContaining(['204', '401', '403']));
    });
  });

  describe('durability', () => {
    it('keeps sessions, and the secret that signs their cookies, across a restart', async () => {
      const user = await registerUser(running.url);
      const session = await login(running.url, user);
      await running.close();
      running = await startApp(storage.env);
      const response = await api().get('/api/auth/session').set('Cookie', session.cookie).expect(200);
      expect(response.body.user.id).toBe(user.id);
    });
  });
});

describe('cookie sessions with secure cookies', () => {
  let storage: TestStorage;
  let running: RunningApp;

  beforeAll(async () => {
    ({ storage, running } = await bootWith({
      COOKIE_SECURE: 'true',
      COOKIE_SAMESITE: 'strict',
      TRUST_PROXY: '1',
    }));
  });

  afterAll(async () => {
    await running.close();
    await storage.drop();
  });

  it('names the cookie __Host-sid and marks it Secure, behind a TLS-terminating proxy', async () => {
    const user = await registerUser(running.url);
    const response = await request(running.url)
      .post('/api/auth/session/login')
      .set('X-Forwarded-Proto', 'https')
      .send({ email: user.email, password: user.password })
      .expect(200);
    const device = setCookies(response).find((cookie) => DEVICE_COOKIE.test(cookie));
    expect(device).toMatch(
      /^__Host-did=[^;]+; Max-Age=31536000; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=Strict$/,
    );
    const cookies = setCookies(response).filter((cookie) => !DEVICE_COOKIE.test(cookie));
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatch(/^__Host-sid=s%3A/);
    expect(cookies[0]).toMatch(/; Path=\/(;|$)/);
    expect(cookies[0]).toMatch(/; HttpOnly(;|$)/);
    expect(cookies[0]).toMatch(/; Secure(;|$)/);
    expect(cookies[0]).toMatch(/; SameSite=Strict(;|$)/);
    expect(attributesOf(cookies[0])).not.toContain('domain');

    const cookie = cookies[0].split(';')[0];
    await request(running.url)
      .get('/api/auth/session')
      .set('X-Forwarded-Proto', 'https')
      .set('Cookie', cookie)
      .expect(200);
    const plainName = `sid=${cookie.slice(cookie.indexOf('=') + 1)}`;
    expectError(
      await request(running.url).get('/api/auth/session').set('Cookie', plainName),
      401,
      'AUTHENTICATION_REQUIRED',
    );
  });
});

describe('cookie sessions with secure cookies and a trusted proxy that reports plain HTTP', () => {
  let storage: TestStorage;
  let running: RunningApp;

  beforeAll(async () => {
    ({ storage, running } = await bootWith({ COOKIE_SECURE: 'true', TRUST_PROXY: '1' }));
  });

  afterAll(async () => {
    await running.close();
    await storage.drop();
  });

  it.each([
    ['X-Forwarded-Proto: http', 'http'],
    ['no X-Forwarded-Proto', undefined],
  ])('still sets the Secure __Host-sid cookie on login with %s', async (_label, proto) => {
    const user = await registerUser(running.url);
    const call = request(running.url).post('/api/auth/session/login');
    if (proto) call.set('X-Forwarded-Proto', proto);
    const response = await call.send({ email: user.email, password: user.password }).expect(200);
    // Every cookie is Secure and __Host- named, the device cookie beside the session cookie included.
    for (const set of setCookies(response)) expect(set).toMatch(/^__Host-(sid|did)=.*; Secure(;|$)/);
    const cookies = setCookies(response).filter((set) => set.startsWith('__Host-sid='));
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatch(/^__Host-sid=s%3A.*; Secure(;|$)/);
    await request(running.url).get('/api/auth/session').set('Cookie', cookies[0].split(';')[0]).expect(200);
  });
});

describe('cookie sessions with secure cookies behind a proxy that is not trusted (plain-HTTP last hop)', () => {
  let storage: TestStorage;
  let running: RunningApp;

  beforeAll(async () => {
    ({ storage, running } = await bootWith({ COOKIE_SECURE: 'true', SESSION_IDLE_TTL: '4s' }));
  });

  afterAll(async () => {
    await running.close();
    await storage.drop();
  });

  it('sets a Secure __Host-sid cookie on a plain-HTTP login, and on every later write of the session', async () => {
    const user = await registerUser(running.url);
    const response = await request(running.url)
      .post('/api/auth/session/login')
      .send({ email: user.email, password: user.password })
      .expect(200);
    for (const set of setCookies(response)) expect(set).toMatch(/^__Host-(sid|did)=.*; Secure(;|$)/);
    const cookies = setCookies(response).filter((set) => set.startsWith('__Host-sid='));
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatch(/^__Host-sid=s%3A/);
    expect(cookies[0]).toMatch(/; Secure(;|$)/);
    expect(cookies[0]).toMatch(/; Path=\/(;|$)/);
    expect(attributesOf(cookies[0])).not.toContain('domain');

    const cookie = cookies[0].split(';')[0];
    // Activity is recorded a quarter of the 4 s idle limit after login; the re-sent cookie is Secure too.
    await sleep(1100);
    const later = await request(running.url).get('/api/auth/session').set('Cookie', cookie).expect(200);
    const resent = setCookies(later);
    expect(resent).toHaveLength(1);
    expect(resent[0]).toMatch(/^__Host-sid=/);
    expect(resent[0]).toMatch(/; Secure(;|$)/);

    const logout = await request(running.url)
      .post('/api/auth/session/logout')
      .set('Cookie', cookie)
      .set('X-CSRF-Token', (response.body as { csrfToken: string }).csrfToken)
      .expect(204);
    expect(setCookies(logout)[0]).toMatch(/^__Host-sid=;.*; Secure(;|$)/);
  });
});

describe('cookie sessions with short lifetimes', () => {
  const secret = randomBytes(32).toString('hex');
  let storage: TestStorage;
  let running: RunningApp;
  const api = () => request(running.url);

  beforeAll(async () => {
    ({ storage, running } = await bootWith({
      SESSION_IDLE_TTL: '2s',
      SESSION_ABSOLUTE_TTL: '4s',
      SESSION_SECRET: secret,
    }));
  });

  afterAll(async () => {
    await running.close();
    await storage.drop();
  });

  it('expires a session left idle past SESSION_IDLE_TTL', async () => {
    const session = await login(running.url, await registerUser(running.url));
    await api().get('/api/auth/session').set('Cookie', session.cookie).expect(200);
    await sleep(2300);
    expectError(await api().get('/api/auth/session').set('Cookie', session.cookie), 401, 'SESSION_INVALID');
  });

  it('slides the idle limit with activity but ends the session at SESSION_ABSOLUTE_TTL', async () => {
    const session = await login(running.url, await registerUser(running.url));
    const started = Date.now();
    while (Date.now() - started < 3400) {
      await sleep(850);
      await api().get('/api/auth/session').set('Cookie', session.cookie).expect(200);
    }
    await sleep(Math.max(0, 4200 - (Date.now() - started)));
    expectError(await api().get('/api/auth/session').set('Cookie', session.cookie), 401, 'SESSION_INVALID');
  });

  it('re-sends the cookie with its configured attributes when activity is recorded', async () => {
    const session = await login(running.url, await registerUser(running.url));
    // The activity interval is a quarter of the 2 s idle limit.
    await sleep(600);
    const response = await api().get('/api/auth/session').set('Cookie', session.cookie).expect(200);
    const cookie = setCookies(response).find((header) => header.startsWith('sid='));
    expect(cookie).toMatch(/; Path=\//);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Lax/);
    expect(cookie).toMatch(/; Expires=/);
  });

  it('never authenticates a correctly signed id the client chose before login', async () => {
    const chosen = signedCookie('sid', randomBytes(24).toString('base64url'), secret);
    expectError(await api().get('/api/auth/session').set('Cookie', chosen), 401, 'SESSION_INVALID');
    const session = await login(running.url, await registerUser(running.url), chosen);
    expect(sessionIdOf(session.cookie)).not.toBe(sessionIdOf(chosen));
    expectError(await api().get('/api/auth/session').set('Cookie', chosen), 401, 'SESSION_INVALID');
    await api().get('/api/auth/session').set('Cookie', session.cookie).expect(200);
  });
});
