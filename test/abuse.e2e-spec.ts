import { connect, Socket } from 'node:net';
import request, { Response } from 'supertest';
import { DataSource } from 'typeorm';
import { LOCK_BASE_SECONDS } from '../src/rate-limit/login-throttle';
import { REDIS, RedisClient } from '../src/redis/redis.module';
import { PasswordHasher } from '../src/users/password-hasher';
import { expectError, sessionCookieOf } from './support/clients';
import { STRONG_PASSWORD, uniqueEmail } from './support/factories';
import { appFor, createTestStorage, Env, RunningApp, startApp } from './support/test-app';

let ipCounter = 0;
/** A client address of its own per use, so per-IP counters never leak from one test into another. */
function freshIp(): string {
  ipCounter += 1;
  return `10.${(ipCounter >> 16) & 255}.${(ipCounter >> 8) & 255}.${ipCounter & 255}`;
}

const LOGIN_ROUTES = [
  ['session', '/api/auth/session/login'],
  ['token', '/api/auth/token/login'],
] as const;
type LoginPath = (typeof LOGIN_ROUTES)[number][1];

const ADMIN = { email: 'abuse.admin@example.com', password: 'admin-lantern-orbit-77' };

/** A refused login hands out nothing: no session cookie, no token. */
function expectNoCredential(response: Response): void {
  expect(response.headers['set-cookie']).toBeUndefined();
  expect(response.body.accessToken).toBeUndefined();
  expect(response.body.refreshToken).toBeUndefined();
}

function retryAfterOf(response: Response): number {
  expect(response.headers['retry-after']).toMatch(/^\d+$/);
  return Number(response.headers['retry-after']);
}

describe('abuse resistance', () => {
  // TRUST_PROXY=1 lets each test speak from addresses of its own through X-Forwarded-For.
  const a = appFor({
    TRUST_PROXY: '1',
    REGISTER_RATE_LIMIT: '3',
    REFRESH_RATE_LIMIT: '3',
    LOGIN_IP_MAX_FAILURES: '8',
    LOGIN_IP_MAX_ACCOUNTS: '5',
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
  });

  const post = (path: string, body: object | string, ip = freshIp()) =>
    request(a.current().url)
      .post(path)
      .set('X-Forwarded-For', ip)
      .set('Content-Type', 'application/json')
      .send(typeof body === 'string' ? body : JSON.stringify(body));

  const register = (body: object | string, ip = freshIp()) => post('/api/auth/register', body, ip);

  const login = (path: LoginPath, email: string, password: string, ip = freshIp()) =>
    post(path, { email, password }, ip);

  const refresh = (refreshToken: string, ip = freshIp()) =>
    post('/api/auth/token/refresh', { refreshToken }, ip);

  async function createUser(password = STRONG_PASSWORD): Promise<{ email: string; password: string }> {
    const email = uniqueEmail('abuse');
    await register({ email, password }).expect(201);
    return { email, password };
  }

  async function tokenLogin(user: { email: string; password: string }): Promise<{
    accessToken: string;
    refreshToken: string;
  }> {
    const response = await login('/api/auth/token/login', user.email, user.password).expect(200);
    return response.body as { accessToken: string; refreshToken: string };
  }

  /** Each failure from an address of its own unless one is given, so only the account's count grows. */
  async function failTimes(path: LoginPath, email: string, times: number, ip?: string): Promise<void> {
    for (let i = 0; i < times; i += 1) {
      const response = await login(path, email, 'wrong-password-guess', ip ?? freshIp());
      expectError(response, 401, 'INVALID_CREDENTIALS');
    }
  }

  /** Stands in for the passing of time: removes every account lock from whichever store holds them. */
  async function expireAccountLocks(): Promise<void> {
    const { app } = a.current();
    const redis = app.get<RedisClient | null>(REDIS);
    if (redis) {
      const keys = await redis.keys('*login-lock-account*');
      if (keys.length > 0) await redis.del(keys);
    } else {
      await app.get(DataSource).query(`DELETE FROM rate_limits WHERE key LIKE 'login-lock-account:%'`);
    }
  }

  describe.each(LOGIN_ROUTES)('login limits on %s login (%s)', (_method, path) => {
    it('locks an account after LOGIN_MAX_FAILURES failures: the right password then gets 429 with Retry-After', async () => {
      const user = await createUser();
      await failTimes(path, user.email, 5);
      const locked = await login(path, user.email, user.password);
      expectError(locked, 429, 'RATE_LIMITED');
      expectNoCredential(locked);
      expect(retryAfterOf(locked)).toBeGreaterThan(0);
      expect(retryAfterOf(locked)).toBeLessThanOrEqual(LOCK_BASE_SECONDS);
    });

    it('counts the account under its normalised email', async () => {
      const user = await createUser();
      await failTimes(path, `  ${user.email.toUpperCase()} `, 5);
      expectError(await login(path, user.email, user.password), 429, 'RATE_LIMITED');
    });

    it('makes the lock longer with each further failure', async () => {
      const user = await createUser();
      await failTimes(path, user.email, 5);
      const first = retryAfterOf(await login(path, user.email, user.password).expect(429));
      await expireAccountLocks();
      await failTimes(path, user.email, 1);
      const second = retryAfterOf(await login(path, user.email, user.password).expect(429));
      await expireAccountLocks();
      await failTimes(path, user.email, 1);
      const third = retryAfterOf(await login(path, user.email, user.password).expect(429));
      expect(first).toBeLessThanOrEqual(LOCK_BASE_SECONDS);
      expect(second).toBeGreaterThan(LOCK_BASE_SECONDS);
      expect(second).toBeLessThanOrEqual(2 * LOCK_BASE_SECONDS);
      expect(third).toBeGreaterThan(2 * LOCK_BASE_SECONDS);
      expect(third).toBeLessThanOrEqual(4 * LOCK_BASE_SECONDS);
    });

    it("resets the account's count on success", async () => {
      const user = await createUser();
      await failTimes(path, user.email, 4);
      await login(path, user.email, user.password).expect(200);
      await failTimes(path, user.email, 4);
      await login(path, user.email, user.password).expect(200);
    });

    it('locks an unknown email exactly as a known one, so a lock reveals nothing', async () => {
      const user = await createUser();
      const ghost = uniqueEmail('ghost');
      await failTimes(path, user.email, 5);
      await failTimes(path, ghost, 5);
      const known = await login(path, user.email, 'another-wrong-guess');
      const unknown = await login(path, ghost, 'another-wrong-guess');
      expectError(known, 429, 'RATE_LIMITED');
      // Retry-After counts down from when each lock began, so it may differ by the second between the two.
      expect(retryAfterOf(unknown)).toBeLessThanOrEqual(LOCK_BASE_SECONDS);
      expect(comparable(unknown, ['retry-after'])).toEqual(comparable(known, ['retry-after']));
    });

    it('limits failures per client IP across accounts (LOGIN_IP_MAX_FAILURES)', async () => {
      const ip = freshIp();
      const [first, second, third] = [await createUser(), await createUser(), await createUser()];
      await failTimes(path, first.email, 4, ip);
      await failTimes(path, second.email, 4, ip);
      const blocked = await login(path, third.email, third.password, ip);
      expectError(blocked, 429, 'RATE_LIMITED');
      expectNoCredential(blocked);
      expect(retryAfterOf(blocked)).toBeGreaterThan(0);
      await login(path, third.email, third.password, freshIp()).expect(200);
    });

    it('limits password spraying: failures against many accounts from one IP (LOGIN_IP_MAX_ACCOUNTS)', async () => {
      const ip = freshIp();
      for (let i = 0; i < 5; i += 1) await failTimes(path, uniqueEmail('spray'), 1, ip);
      const victim = await createUser();
      expectError(await login(path, victim.email, victim.password, ip), 429, 'RATE_LIMITED');
      await login(path, victim.email, victim.password, freshIp()).expect(200);
    });

    it('counts a forwarded login against the address the trusted proxy saw, not one the client prepended', async () => {
      const ip = freshIp();
      const victim = await createUser();
      for (let i = 0; i < 5; i += 1) {
        await login(path, uniqueEmail('spoof'), 'wrong-password-guess', `${freshIp()}, ${ip}`).expect(401);
      }
      const blocked = await login(path, victim.email, victim.password, `${freshIp()}, ${ip}`);
      expectError(blocked, 429, 'RATE_LIMITED');
    });
  });

  it('shares the account count between both login routes', async () => {
    const user = await createUser();
    await failTimes('/api/auth/session/login', user.email, 3);
    await failTimes('/api/auth/token/login', user.email, 2);
    for (const [, path] of LOGIN_ROUTES) {
      expectError(await login(path, user.email, user.password), 429, 'RATE_LIMITED');
    }
  });

  describe('refresh limit', () => {
    it('limits refreshes per client IP with 429 and Retry-After, leaving the presented token unused', async () => {
      let { refreshToken } = await tokenLogin(await createUser());
      const ip = freshIp();
      for (let i = 0; i < 3; i += 1) {
        const response = await refresh(refreshToken, ip).expect(200);
        refreshToken = response.body.refreshToken as string;
      }
      const refused = await refresh(refreshToken, ip);
      expectError(refused, 429, 'RATE_LIMITED');
      expectNoCredential(refused);
      expect(retryAfterOf(refused)).toBeGreaterThan(0);
      expect(retryAfterOf(refused)).toBeLessThanOrEqual(60);
      // The refused attempt rotated nothing: the same token still refreshes from another address.
      await refresh(refreshToken, freshIp()).expect(200);
    });

    it('counts attempts with unknown or missing tokens too', async () => {
      const ip = freshIp();
      await refresh('not-a-token', ip).expect(401);
      await refresh('A'.repeat(43), ip).expect(401);
      await post('/api/auth/token/refresh', {}, ip).expect(401);
      expectError(await refresh('not-a-token', ip), 429, 'RATE_LIMITED');
    });

    it('lets exactly the limit through when one address refreshes one token in parallel, leaving one live token', async () => {
      const { accessToken, refreshToken } = await tokenLogin(await createUser());
      const ip = freshIp();
      const responses = await Promise.all(Array.from({ length: 10 }, () => refresh(refreshToken, ip)));
      const passed = responses.filter((response) => response.status === 200);
      expect(passed).toHaveLength(3);
      for (const response of responses.filter((r) => r.status !== 200)) {
        expectError(response, 429, 'RATE_LIMITED');
      }
      expect(new Set(passed.map((response) => response.body.refreshToken as string)).size).toBe(1);
      const familyId = JSON.parse(Buffer.from(accessToken.split('.')[1], 'base64url').toString()).sid;
      const live: { count: string }[] = await a
        .current()
        .app.get(DataSource)
        .query(
          'SELECT count(*)::text AS count FROM refresh_tokens WHERE family_id = $1 AND used_at IS NULL',
          [familyId],
        );
      expect(live).toEqual([{ count: '1' }]);
    });

    it("keeps every connection's query whole while queries and transactions run side by side", async () => {
      // On the embedded database all connections share one PGlite session; interleaved protocol messages
      // used to swap one query's statement for another's. PostgreSQL runs the same check trivially.
      const dataSource = a.current().app.get(DataSource);
      const results = await Promise.all(
        Array.from({ length: 40 }, async (_, n): Promise<unknown> => {
          if (n % 4 === 0) {
            return dataSource.transaction(async (manager) => {
              const [row] = await manager.query('SELECT $1::int AS n', [n]);
              await manager.query('SELECT pg_sleep(0)');
              return (row as { n: number }).n;
            });
          }
          // Each text its own statement: a Bind that reached another connection's Parse shows as a mismatch.
          const [row] = await dataSource.query(`SELECT $1::int AS n, 'q${n}' AS label`, [n]);
          const { n: value, label } = row as { n: number; label: string };
          return label === `q${value}` ? value : `mismatch ${label}`;
        }),
      );
      expect(results).toEqual(Array.from({ length: 40 }, (_, n) => n));
    });
  });

  describe('registration limit', () => {
    it('limits registrations per forwarded IP when TRUST_PROXY is set', async () => {
      const ip = freshIp();
      for (let i = 0; i < 3; i += 1) {
        await register({ email: uniqueEmail(), password: STRONG_PASSWORD }, ip).expect(201);
      }
      const refused = await register({ email: uniqueEmail(), password: STRONG_PASSWORD }, ip);
      expectError(refused, 429, 'RATE_LIMITED');
      expect(retryAfterOf(refused)).toBeGreaterThan(0);
      expect(retryAfterOf(refused)).toBeLessThanOrEqual(3600);
      await register({ email: uniqueEmail(), password: STRONG_PASSWORD }, freshIp()).expect(201);
    });
  });

  describe.each(LOGIN_ROUTES)('enumeration on %s login (%s)', (_method, path) => {
    it('answers an unknown email and a wrong password with the same status, body and headers', async () => {
      const user = await createUser();
      const wrong = await login(path, user.email, 'not-the-password');
      const unknown = await login(path, uniqueEmail('nobody'), 'not-the-password');
      expectError(wrong, 401, 'INVALID_CREDENTIALS');
      expectNoCredential(wrong);
      expect(comparable(unknown)).toEqual(comparable(wrong));
    });

    it('does one bcrypt comparison at the configured cost for an unknown email, as for a wrong password', async () => {
      const user = await createUser();
      const hasher = a.current().app.get(PasswordHasher);
      const verify = jest.spyOn(hasher, 'verify');
      const verifyNothing = jest.spyOn(hasher, 'verifyNothing');
      try {
        await login(path, user.email, 'not-the-password').expect(401);
        expect([verify.mock.calls.length, verifyNothing.mock.calls.length]).toEqual([1, 0]);
        await login(path, uniqueEmail('nobody'), 'not-the-password').expect(401);
        expect([verify.mock.calls.length, verifyNothing.mock.calls.length]).toEqual([1, 1]);
        // The dummy hash is made at the same cost as real ones, so both paths cost the same bcrypt work.
        const dummy = (hasher as unknown as { dummyHash: string }).dummyHash;
        const real = await hasher.hash('any-password-at-all');
        expect(dummy.slice(0, 7)).toBe(real.slice(0, 7));
      } finally {
        verify.mockRestore();
        verifyNothing.mockRestore();
      }
    });
  });

  describe('passwords end to end', () => {
    it.each([
      ['7 characters', 'kx9-tq2'],
      ['129 characters', 'k'.repeat(129)],
      ['7 emoji', '😀'.repeat(7)],
      ['129 characters after NFKC (65 ﬁ ligatures)', 'ﬁ'.repeat(65)],
      ['a NUL character', 'lantern\u0000orbit-cobalt'],
      ['a common password', 'iloveyou'],
      ['a common password in capitals', 'PASSWORD1'],
      ['a common password in full-width letters', 'ｐａｓｓｗｏｒｄ１'],
    ])('refuses a password of %s with VALIDATION_FAILED on password', async (_label, password) => {
      const response = await register({ email: uniqueEmail(), password });
      expectError(response, 400, 'VALIDATION_FAILED');
      expect(response.body.details).toEqual([{ field: 'password', message: expect.any(String) }]);
    });

    it.each([
      ['8 characters', 'kx9-tq2z'],
      ['128 characters', 'k'.repeat(127) + 'z'],
      ['8 emoji', '🔐🌋🦉🎻🧊🪐🌵🛶'],
      ['8 characters after NFKC (4 ﬁ ligatures)', 'ﬁﬂﬁﬂ'],
    ])('accepts a password of %s and logs in with it', async (_label, password) => {
      const email = uniqueEmail();
      await register({ email, password }).expect(201);
      await login('/api/auth/token/login', email, password).expect(200);
    });

    it('treats two passwords sharing their first 72 bytes as different passwords', async () => {
      const prefix = 'ab'.repeat(36);
      const user = await createUser(`${prefix}-first-tail`);
      await login('/api/auth/session/login', user.email, `${prefix}-other-tail`).expect(401);
      await login('/api/auth/token/login', user.email, `${prefix}-other-tail`).expect(401);
      await login('/api/auth/session/login', user.email, `${prefix}-first-tail`).expect(200);
    });

    it('treats multi-byte passwords past 72 bytes as different passwords', async () => {
      const prefix = '🔐'.repeat(18); // 72 bytes of UTF-8
      const user = await createUser(`${prefix}🌋`);
      await login('/api/auth/token/login', user.email, `${prefix}🦉`).expect(401);
      await login('/api/auth/token/login', user.email, `${prefix}🌋`).expect(200);
    });

    it('logs in with the other Unicode normalisation form of the registered password', async () => {
      const decomposed = 'cafe\u0301-ﬁre-ｏｒｂｉｔ'; // NFD é, the ﬁ ligature, full-width letters
      const composed = decomposed.normalize('NFKC');
      expect(composed).not.toBe(decomposed);
      const user = await createUser(decomposed);
      await login('/api/auth/session/login', user.email, composed).expect(200);
      const other = await createUser(composed);
      await login('/api/auth/token/login', other.email, decomposed).expect(200);
    });

    it('refuses a NUL character at login as a wrong password, never a 500', async () => {
      const user = await createUser();
      const response = await login('/api/auth/token/login', user.email, `${user.password}\u0000`);
      expectError(response, 401, 'INVALID_CREDENTIALS');
    });

    it.each([
      ['a common password', 'iloveyou'],
      ['7 characters', 'kx9-tq2'],
      ['a NUL character', 'lantern\u0000orbit-cobalt'],
    ])('holds a new password to the same rules: refuses %s', async (_label, newPassword) => {
      const user = await createUser();
      const { accessToken } = await tokenLogin(user);
      const response = await request(a.current().url)
        .post('/api/me/password')
        .set('Authorization', `Bearer ${accessToken}`)
        .send({ currentPassword: user.password, newPassword });
      expectError(response, 400, 'VALIDATION_FAILED');
      expect(response.body.details).toEqual([{ field: 'newPassword', message: expect.any(String) }]);
      await login('/api/auth/token/login', user.email, user.password).expect(200);
    });
  });

  describe('hostile input on register', () => {
    it.each([
      ['role', { role: 'admin' }],
      ['id', { id: '00000000-0000-0000-0000-000000000000' }],
      ['createdAt', { createdAt: '2000-01-01T00:00:00Z' }],
    ])('refuses mass assignment of %s', async (field, extra) => {
      const email = uniqueEmail();
      const response = await register({ email, password: STRONG_PASSWORD, ...extra });
      expectError(response, 400, 'VALIDATION_FAILED');
      expect(response.body.details).toEqual([{ field, message: expect.any(String) }]);
      // Nothing was created: the same email registers afterwards, as a plain user.
      const created = await register({ email, password: STRONG_PASSWORD }).expect(201);
      expect(created.body.user.role).toBe('user');
    });

    it.each([
      ['__proto__', `{"email":"EMAIL","password":"${STRONG_PASSWORD}","__proto__":{"role":"admin"}}`],
      [
        'constructor.prototype',
        `{"email":"EMAIL","password":"${STRONG_PASSWORD}","constructor":{"prototype":{"role":"admin"}}}`,
      ],
    ])('refuses a %s key and pollutes no prototype', async (label, raw) => {
      const response = await register(raw.replace('EMAIL', uniqueEmail()));
      expectError(response, 400, 'VALIDATION_FAILED');
      expect(response.body.details).toEqual([
        { field: label === '__proto__' ? '__proto__' : 'constructor', message: expect.any(String) },
      ]);
      expect(({} as Record<string, unknown>).role).toBeUndefined();
      expect((Object.prototype as Record<string, unknown>).role).toBeUndefined();
    });

    it.each([
      ['an operator object as email', { email: { $ne: null }, password: STRONG_PASSWORD }, 'email'],
      ['an array as email', { email: [uniqueEmail()], password: STRONG_PASSWORD }, 'email'],
      ['an array as password', { email: uniqueEmail(), password: [STRONG_PASSWORD] }, 'password'],
      ['a number as password', { email: uniqueEmail(), password: 12345678 }, 'password'],
      ['null as email', { email: null, password: STRONG_PASSWORD }, 'email'],
      [
        'CR/LF in the email',
        { email: 'a\r\nBcc: x@evil.io@example.com', password: STRONG_PASSWORD },
        'email',
      ],
      [
        'CR/LF in displayName',
        { email: uniqueEmail(), password: STRONG_PASSWORD, displayName: 'Al\r\nice' },
        'displayName',
      ],
    ])('refuses %s with VALIDATION_FAILED naming the field', async (_label, body, field) => {
      const response = await register(body);
      expectError(response, 400, 'VALIDATION_FAILED');
      expect(response.body.details).toEqual(expect.arrayContaining([expect.objectContaining({ field })]));
    });

    it.each([
      `' OR '1'='1@example.com`,
      `robert'); DROP TABLE users;--@example.com`,
      `x@example.com' UNION SELECT password_hash FROM users--`,
    ])('handles the SQL injection string %p as data, never as SQL', async (email) => {
      const response = await register({ email, password: STRONG_PASSWORD });
      expect([201, 400]).toContain(response.status);
      if (response.status === 400) expectError(response, 400, 'VALIDATION_FAILED');
      else expect(response.body.user.email).toBe(email.toLowerCase());
      for (const [, path] of LOGIN_ROUTES) {
        expectError(await login(path, email, 'not-the-password'), 401, 'INVALID_CREDENTIALS');
      }
      // The users table is intact.
      await createUser();
    });

    it('refuses an empty body and an empty object with VALIDATION_FAILED', async () => {
      const empty = await request(a.current().url)
        .post('/api/auth/register')
        .set('X-Forwarded-For', freshIp())
        .set('Content-Type', 'application/json');
      expectError(empty, 400, 'VALIDATION_FAILED');
      const object = await register({});
      expectError(object, 400, 'VALIDATION_FAILED');
      expect(object.body.details).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ field: 'email' }),
          expect.objectContaining({ field: 'password' }),
        ]),
      );
    });

    it('answers a body that is not valid UTF-8 without a 500', async () => {
      const email = Buffer.from(uniqueEmail());
      const body = Buffer.concat([
        Buffer.from('{"email":"'),
        Buffer.from([0xff, 0xfe, 0xc3]),
        email,
        Buffer.from(`","password":"${STRONG_PASSWORD}"}`),
      ]);
      const response = await register(body.toString('latin1'));
      expect(response.status).toBeLessThan(500);
    });
  });

  describe.each(LOGIN_ROUTES)('hostile input on %s login (%s)', (_method, path) => {
    it.each([
      ['an operator object as email', { email: { $ne: null }, password: STRONG_PASSWORD }, 'email'],
      ['an operator object as password', { email: 'x@example.com', password: { $gt: '' } }, 'password'],
      ['an array as email', { email: ['x@example.com'], password: STRONG_PASSWORD }, 'email'],
      ['a number as password', { email: 'x@example.com', password: 12345678 }, 'password'],
      ['null as password', { email: 'x@example.com', password: null }, 'password'],
    ])('refuses %s with VALIDATION_FAILED naming the field', async (_label, body, field) => {
      const response = await post(path, body);
      expectError(response, 400, 'VALIDATION_FAILED');
      expectNoCredential(response);
      expect(response.body.details).toEqual(expect.arrayContaining([expect.objectContaining({ field })]));
    });

    it('refuses a role (mass assignment) even with the right password, and hands out nothing', async () => {
      const user = await createUser();
      const response = await post(path, { email: user.email, password: user.password, role: 'admin' });
      expectError(response, 400, 'VALIDATION_FAILED');
      expectNoCredential(response);
    });

    it('refuses a __proto__ key before any credential check', async () => {
      const user = await createUser();
      const response = await post(
        path,
        `{"email":"${user.email}","password":"${user.password}","__proto__":{"role":"admin"}}`,
      );
      expectError(response, 400, 'VALIDATION_FAILED');
      expectNoCredential(response);
    });

    it('refuses CR/LF in the email with VALIDATION_FAILED and puts it in no header', async () => {
      const response = await login(path, 'a@example.com\r\nSet-Cookie: evil=1', 'not-the-password');
      expectError(response, 400, 'VALIDATION_FAILED');
      expect(response.body.details).toEqual([{ field: 'email', message: expect.any(String) }]);
      expect(JSON.stringify(response.headers)).not.toMatch(/evil/);
    });

    it('answers a 1 MB body with 413 PAYLOAD_TOO_LARGE', async () => {
      const response = await post(path, {
        email: uniqueEmail(),
        password: STRONG_PASSWORD,
        pad: 'x'.repeat(1024 * 1024),
      });
      expectError(response, 413, 'PAYLOAD_TOO_LARGE');
    });
  });

  describe('transport limits', () => {
    it('answers a 1 MB body on register with 413 PAYLOAD_TOO_LARGE', async () => {
      const response = await register({
        email: uniqueEmail(),
        password: STRONG_PASSWORD,
        pad: 'x'.repeat(1024 * 1024),
      });
      expectError(response, 413, 'PAYLOAD_TOO_LARGE');
    });

    it.each(['/health/live', '/api/auth/token/login'])(
      'answers headers over 16 KiB on %s with 431',
      async (path) => {
        const response = await request(a.current().url)
          .post(path)
          .set('X-Padding', 'x'.repeat(20 * 1024))
          .send({});
        expect(response.status).toBe(431);
        expect(response.body).toMatchObject({ statusCode: 431, code: 'HEADERS_TOO_LARGE' });
      },
    );

    it('times out clients that send their headers or their body too slowly (408)', async () => {
      const { server, url } = a.current();
      const saved = { headersTimeout: server.headersTimeout, requestTimeout: server.requestTimeout };
      server.headersTimeout = 500;
      server.requestTimeout = 1000;
      const { hostname, port } = new URL(url);
      const drip = (start: string, line: () => string): Promise<string> => {
        const socket: Socket = connect(Number(port), hostname);
        let received = '';
        socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
        socket.write(start);
        // A little every 200 ms: never idle, never finished.
        const timer = setInterval(() => {
          if (socket.writable) socket.write(line());
        }, 200);
        return new Promise<string>((resolve) =>
          socket.on('close', () => {
            clearInterval(timer);
            resolve(received);
          }),
        ).finally(() => socket.destroy());
      };
      try {
        // Node checks these timeouts every 30 s, so one wait serves both clients.
        const [slowHeaders, slowBody] = await Promise.all([
          drip(
            'POST /api/auth/register HTTP/1.1\r\nHost: localhost\r\n',
            () => `X-Drip-${Date.now()}: 1\r\n`,
          ),
          drip(
            'POST /api/auth/token/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n' +
              'Content-Length: 100000\r\n\r\n{"email":"',
            () => 'a',
          ),
        ]);
        expect(slowHeaders).toMatch(/^HTTP\/1\.1 408 /);
        expect(slowBody).toMatch(/^HTTP\/1\.1 408 /);
      } finally {
        Object.assign(server, saved);
      }
    }, 45_000);
  });

  describe('headers', () => {
    const HELMET = [
      'content-security-policy',
      'strict-transport-security',
      'x-content-type-options',
      'x-frame-options',
      'referrer-policy',
      'cross-origin-opener-policy',
    ];

    it('sends helmet headers on every response, and no-store on every one carrying a credential or personal data', async () => {
      const url = a.current().url;
      const user = await createUser();
      const session = await login('/api/auth/session/login', user.email, user.password).expect(200);
      const cookie = sessionCookieOf(session)!;
      const tokens = await login('/api/auth/token/login', user.email, user.password).expect(200);
      const bearer = `Bearer ${tokens.body.accessToken as string}`;
      const admin = await tokenLogin(ADMIN);
      const adminBearer = `Bearer ${admin.accessToken}`;
      const sensitive: [string, Response][] = [
        ['register', await register({ email: uniqueEmail(), password: STRONG_PASSWORD }).expect(201)],
        ['session login', session],
        ['GET session', await request(url).get('/api/auth/session').set('Cookie', cookie).expect(200)],
        ['token login', tokens],
        ['refresh', await refresh(tokens.body.refreshToken as string).expect(200)],
        ['GET me (cookie)', await request(url).get('/api/me').set('Cookie', cookie).expect(200)],
        ['GET me (bearer)', await request(url).get('/api/me').set('Authorization', bearer).expect(200)],
        [
          'GET me/sessions',
          await request(url).get('/api/me/sessions').set('Authorization', bearer).expect(200),
        ],
        [
          'GET admin/users',
          await request(url).get('/api/admin/users').set('Authorization', adminBearer).expect(200),
        ],
        [
          'GET admin/audit',
          await request(url).get('/api/admin/audit').set('Authorization', adminBearer).expect(200),
        ],
        ['400', await register({ email: 'nope', password: STRONG_PASSWORD }).expect(400)],
        ['malformed JSON', await register('{"email":').expect(400)],
        ['401', await login('/api/auth/token/login', user.email, 'wrong-password').expect(401)],
        ['404 under /api', await request(url).get('/api/nothing-here').expect(404)],
        ['404 elsewhere', await request(url).get('/nothing-here').expect(404)],
      ];
      const publicOnes: [string, Response][] = [
        ['health', await request(url).get('/health/live').expect(200)],
        ['jwks', await request(url).get('/.well-known/jwks.json').expect(200)],
      ];
      for (const [label, response] of [...sensitive, ...publicOnes]) {
        for (const header of HELMET)
          expect([label, header, response.headers[header]]).toEqual([label, header, expect.any(String)]);
        expect([label, response.headers['x-powered-by']]).toEqual([label, undefined]);
      }
      for (const [label, response] of sensitive) {
        expect([label, response.headers['cache-control']]).toEqual([label, 'no-store']);
      }
    });
  });
});

/** What a client can compare between two responses: everything but the per-request id, date and etag. */
function comparable(response: Response, alsoIgnore: string[] = []): unknown {
  const body = { ...(response.body as Record<string, unknown>), requestId: undefined };
  const ignored = ['x-request-id', 'date', 'etag', 'content-length', ...alsoIgnore];
  const headers = Object.fromEntries(
    Object.entries(response.headers).filter(([name]) => !ignored.includes(name)),
  );
  return { status: response.status, body, headers };
}

describe('abuse resistance: client IP without TRUST_PROXY', () => {
  const b = appFor({
    REGISTER_RATE_LIMIT: '3',
    REFRESH_RATE_LIMIT: '3',
    LOGIN_IP_MAX_FAILURES: '3',
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
  });
  const post = (path: string, body: object) =>
    request(b.current().url).post(path).set('X-Forwarded-For', freshIp()).send(body);

  it('ignores X-Forwarded-For: registrations count against the socket address', async () => {
    for (let i = 0; i < 3; i += 1) {
      await post('/api/auth/register', { email: uniqueEmail(), password: STRONG_PASSWORD }).expect(201);
    }
    const refused = await post('/api/auth/register', { email: uniqueEmail(), password: STRONG_PASSWORD });
    expectError(refused, 429, 'RATE_LIMITED');
    expect(retryAfterOf(refused)).toBeGreaterThan(0);
  });

  it('ignores X-Forwarded-For: refreshes count against the socket address', async () => {
    let refreshToken = (await post('/api/auth/token/login', ADMIN).expect(200)).body.refreshToken as string;
    for (let i = 0; i < 3; i += 1) {
      refreshToken = (await post('/api/auth/token/refresh', { refreshToken }).expect(200)).body
        .refreshToken as string;
    }
    expectError(await post('/api/auth/token/refresh', { refreshToken }), 429, 'RATE_LIMITED');
  });

  it('ignores X-Forwarded-For: login failures count against the socket address', async () => {
    for (let i = 0; i < 3; i += 1) {
      await post('/api/auth/session/login', { email: uniqueEmail(), password: 'wrong-password' }).expect(401);
    }
    for (const [, path] of LOGIN_ROUTES) expectError(await post(path, ADMIN), 429, 'RATE_LIMITED');
  });
});

describe('abuse resistance: the limiter store cannot be reached', () => {
  describe('Redis down', () => {
    // Nothing listens on port 1: the limiter's Redis is down from the start. ADMIN_* gives an account that
    // exists without going through the (limited) registration.
    const c = appFor({
      REDIS_URL: 'redis://127.0.0.1:1',
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
    });

    it.each(LOGIN_ROUTES)(
      'answers %s login with the right password with 503, never a success',
      async (_m, path) => {
        const response = await request(c.current().url).post(path).send(ADMIN);
        expectError(response, 503, 'SERVICE_UNAVAILABLE');
        expectNoCredential(response);
      },
    );

    it('answers register and refresh with 503 before looking at the request any further', async () => {
      const url = c.current().url;
      const registered = await request(url)
        .post('/api/auth/register')
        .send({ email: uniqueEmail(), password: STRONG_PASSWORD });
      expectError(registered, 503, 'SERVICE_UNAVAILABLE');
      const refreshed = await request(url).post('/api/auth/token/refresh').send({ refreshToken: 'x' });
      expectError(refreshed, 503, 'SERVICE_UNAVAILABLE');
    });
  });

  describe('database store down while the users table answers', () => {
    const d = appFor({ REDIS_URL: undefined, ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password });
    const setStore = (sql: string) => d.current().app.get(DataSource).query(sql);

    it('answers login, register and refresh with 503 and recovers when the store is back', async () => {
      const url = d.current().url;
      const { refreshToken } = (await request(url).post('/api/auth/token/login').send(ADMIN).expect(200))
        .body as { refreshToken: string };
      await setStore('ALTER TABLE rate_limits RENAME TO rate_limits_away');
      try {
        for (const [, path] of LOGIN_ROUTES) {
          const response = await request(url).post(path).send(ADMIN);
          expectError(response, 503, 'SERVICE_UNAVAILABLE');
          expectNoCredential(response);
        }
        const registered = await request(url)
          .post('/api/auth/register')
          .send({ email: uniqueEmail(), password: STRONG_PASSWORD });
        expectError(registered, 503, 'SERVICE_UNAVAILABLE');
        const refreshed = await request(url).post('/api/auth/token/refresh').send({ refreshToken });
        expectError(refreshed, 503, 'SERVICE_UNAVAILABLE');
      } finally {
        await setStore('ALTER TABLE rate_limits_away RENAME TO rate_limits');
      }
      await request(url).post('/api/auth/session/login').send(ADMIN).expect(200);
      await request(url).post('/api/auth/token/refresh').send({ refreshToken }).expect(200);
    });
  });
});

describe('abuse resistance: counters shared across instances', () => {
  const storesUnderTest = process.env.TEST_REDIS_URL ? ['redis', 'database'] : ['database'];

  it.each(storesUnderTest)(
    'keeps a lock made through one instance on the next one (%s store)',
    async (store) => {
      const storage = await createTestStorage();
      const env: Env = {
        ...storage.env,
        TRUST_PROXY: '1',
        ...(store === 'database' ? { REDIS_URL: undefined } : {}),
      };
      const running: RunningApp[] = [];
      try {
        running.push(await startApp(env));
        const email = uniqueEmail('instances');
        await request(running[0].url)
          .post('/api/auth/register')
          .send({ email, password: STRONG_PASSWORD })
          .expect(201);
        for (let i = 0; i < 5; i += 1) {
          await request(running[0].url)
            .post('/api/auth/session/login')
            .set('X-Forwarded-For', freshIp())
            .send({ email, password: 'wrong-password' })
            .expect(401);
        }
        // PostgreSQL: a second instance beside the first. Embedded PGlite belongs to one process, so the
        // next instance is the same data directory after a restart.
        if (storage.mode === 'embedded') await running.shift()!.close();
        running.push(await startApp(env));
        const other = running[running.length - 1];
        const response = await request(other.url)
          .post('/api/auth/token/login')
          .set('X-Forwarded-For', freshIp())
          .send({ email, password: STRONG_PASSWORD });
        expectError(response, 429, 'RATE_LIMITED');
      } finally {
        for (const app of running) await app.close();
        await storage.drop();
      }
    },
    120_000,
  );
});
