import { connect, Socket } from 'node:net';
import { Pool } from 'pg';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { LoginService } from '../src/auth/login.service';
import { AppError, BackendUnavailableError } from '../src/common/app-error';
import { loadConfig } from '../src/config/load-config';
import { LOCK_BASE_SECONDS, LoginThrottle } from '../src/rate-limit/login-throttle';
import { createLoginThrottle } from '../src/rate-limit/rate-limit.module';
import { REDIS, RedisClient } from '../src/redis/redis.module';
import { PasswordHasher } from '../src/users/password-hasher';
import { STRONG_PASSWORD, uniqueEmail } from './support/factories';
import { createTestStorage, Env, RunningApp, startApp, TestStorage } from './support/test-app';

/** An app on storage of its own, for the describe block that declares it. */
function appFor(env: Env): { current: () => RunningApp } {
  let storage: TestStorage;
  let running: RunningApp;
  beforeAll(async () => {
    storage = await createTestStorage();
    running = await startApp({ ...storage.env, ...env });
  }, 60_000);
  afterAll(async () => {
    await running.close();
    await storage.drop();
  }, 60_000);
  return { current: () => running };
}

let ipCounter = 0;
/** A client address of its own per use, so per-IP counters never leak from one test into another. */
function freshIp(): string {
  ipCounter += 1;
  return `10.${(ipCounter >> 16) & 255}.${(ipCounter >> 8) & 255}.${ipCounter & 255}`;
}

interface Outcome {
  code: string;
  retryAfter?: number;
}

function expectErrorShape(body: Record<string, unknown>, status: number, code: string): void {
  expect(body).toMatchObject({ statusCode: status, code });
  expect(typeof body.message).toBe('string');
  expect(typeof body.requestId).toBe('string');
  expect(JSON.stringify(body)).not.toMatch(/stack|at \w+ \(|QueryFailedError|SELECT|INSERT|node_modules/i);
}

describe('abuse resistance', () => {
  // TRUST_PROXY=1 lets each test speak from addresses of its own through X-Forwarded-For.
  const a = appFor({
    TRUST_PROXY: '1',
    REGISTER_RATE_LIMIT: '3',
    REFRESH_RATE_LIMIT: '3',
    LOGIN_IP_MAX_FAILURES: '8',
    LOGIN_IP_MAX_ACCOUNTS: '5',
  });

  const register = (body: object | string, ip = freshIp()) =>
    request(a.current().url)
      .post('/api/auth/register')
      .set('X-Forwarded-For', ip)
      .set('Content-Type', 'application/json')
      .send(typeof body === 'string' ? body : JSON.stringify(body));

  async function createUser(password = STRONG_PASSWORD): Promise<{ email: string; password: string }> {
    const email = uniqueEmail('abuse');
    await register({ email, password }).expect(201);
    return { email, password };
  }

  /** Login through LoginService, which both login routes call through passport-local. */
  async function login(email: string, password: string, ip: string): Promise<Outcome> {
    try {
      await a.current().app.get(LoginService).verifyCredentials(email, password, { ip, userAgent: 'abuse' });
      return { code: 'OK' };
    } catch (error) {
      if (error instanceof BackendUnavailableError) return { code: 'SERVICE_UNAVAILABLE' };
      if (!(error instanceof AppError)) throw error;
      const retryAfter = error.headers['Retry-After'];
      return { code: error.code, ...(retryAfter ? { retryAfter: Number(retryAfter) } : {}) };
    }
  }

  async function failTimes(email: string, times: number, ip = freshIp()): Promise<void> {
    for (let i = 0; i < times; i += 1) {
      await expect(login(email, 'wrong-password-guess', ip)).resolves.toEqual({
        code: 'INVALID_CREDENTIALS',
      });
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

  describe('login limits', () => {
    it('locks an account after LOGIN_MAX_FAILURES failures: the right password then gets 429 with Retry-After', async () => {
      const user = await createUser();
      await failTimes(user.email, 5);
      const locked = await login(user.email, user.password, freshIp());
      expect(locked.code).toBe('RATE_LIMITED');
      expect(locked.retryAfter).toBeGreaterThan(0);
      expect(locked.retryAfter).toBeLessThanOrEqual(LOCK_BASE_SECONDS);
    });

    it('counts the account under its normalised email', async () => {
      const user = await createUser();
      await failTimes(`  ${user.email.toUpperCase()} `, 5);
      await expect(login(user.email, user.password, freshIp())).resolves.toMatchObject({
        code: 'RATE_LIMITED',
      });
    });

    it('makes the lock longer with each further failure', async () => {
      const user = await createUser();
      await failTimes(user.email, 5);
      const first = await login(user.email, user.password, freshIp());
      await expireAccountLocks();
      await failTimes(user.email, 1);
      const second = await login(user.email, user.password, freshIp());
      await expireAccountLocks();
      await failTimes(user.email, 1);
      const third = await login(user.email, user.password, freshIp());
      expect(first).toMatchObject({ code: 'RATE_LIMITED' });
      expect(second).toMatchObject({ code: 'RATE_LIMITED' });
      expect(third).toMatchObject({ code: 'RATE_LIMITED' });
      expect(second.retryAfter).toBeGreaterThan(LOCK_BASE_SECONDS);
      expect(second.retryAfter).toBeLessThanOrEqual(2 * LOCK_BASE_SECONDS);
      expect(third.retryAfter).toBeGreaterThan(2 * LOCK_BASE_SECONDS);
      expect(third.retryAfter).toBeLessThanOrEqual(4 * LOCK_BASE_SECONDS);
    });

    it("resets the account's count on success", async () => {
      const user = await createUser();
      await failTimes(user.email, 4);
      await expect(login(user.email, user.password, freshIp())).resolves.toEqual({ code: 'OK' });
      await failTimes(user.email, 4);
      await expect(login(user.email, user.password, freshIp())).resolves.toEqual({ code: 'OK' });
    });

    it('locks an unknown email exactly as a known one, so a lock reveals nothing', async () => {
      const email = uniqueEmail('ghost');
      await failTimes(email, 5);
      await expect(login(email, STRONG_PASSWORD, freshIp())).resolves.toMatchObject({ code: 'RATE_LIMITED' });
    });

    it('limits failures per client IP across accounts (LOGIN_IP_MAX_FAILURES)', async () => {
      const ip = freshIp();
      const [first, second, third] = [await createUser(), await createUser(), await createUser()];
      await failTimes(first.email, 4, ip);
      await failTimes(second.email, 4, ip);
      const blocked = await login(third.email, third.password, ip);
      expect(blocked.code).toBe('RATE_LIMITED');
      expect(blocked.retryAfter).toBeGreaterThan(0);
      await expect(login(third.email, third.password, freshIp())).resolves.toEqual({ code: 'OK' });
    });

    it('limits password spraying: failures against many accounts from one IP (LOGIN_IP_MAX_ACCOUNTS)', async () => {
      const ip = freshIp();
      for (let i = 0; i < 5; i += 1) await failTimes(uniqueEmail('spray'), 1, ip);
      const victim = await createUser();
      await expect(login(victim.email, victim.password, ip)).resolves.toMatchObject({ code: 'RATE_LIMITED' });
      await expect(login(victim.email, victim.password, freshIp())).resolves.toEqual({ code: 'OK' });
    });

    it('limits refreshes per IP for the refresh route to call', async () => {
      const throttle = a.current().app.get(LoginThrottle);
      const ip = freshIp();
      for (let i = 0; i < 3; i += 1) await expect(throttle.consumeRefresh(ip)).resolves.toBeUndefined();
      await expect(throttle.consumeRefresh(ip)).rejects.toMatchObject({
        code: 'RATE_LIMITED',
        headers: { 'Retry-After': expect.stringMatching(/^\d+$/) },
      });
      await expect(throttle.consumeRefresh(freshIp())).resolves.toBeUndefined();
    });
  });

  describe('registration limit and client IP', () => {
    it('limits registrations per forwarded IP when TRUST_PROXY is set', async () => {
      const ip = freshIp();
      for (let i = 0; i < 3; i += 1) {
        await register({ email: uniqueEmail(), password: STRONG_PASSWORD }, ip).expect(201);
      }
      const refused = await register({ email: uniqueEmail(), password: STRONG_PASSWORD }, ip).expect(429);
      expectErrorShape(refused.body, 429, 'RATE_LIMITED');
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(3600);
      expect(refused.headers['cache-control']).toBe('no-store');
      await register({ email: uniqueEmail(), password: STRONG_PASSWORD }, freshIp()).expect(201);
    });
  });

  describe('enumeration', () => {
    it('answers an unknown email and a wrong password with the same error and headers', async () => {
      const user = await createUser();
      const service = a.current().app.get(LoginService);
      const errorOf = (email: string) =>
        service.verifyCredentials(email, 'not-the-password', { ip: freshIp(), userAgent: 'abuse' }).then(
          () => undefined,
          (error: unknown) => error,
        );
      const wrong = await errorOf(user.email);
      const unknown = await errorOf(uniqueEmail('nobody'));
      expect(wrong).toBeInstanceOf(AppError);
      expect(unknown).toBeInstanceOf(AppError);
      const view = (error: unknown) => {
        const { code, message, details, headers, status } = error as AppError;
        return { code, message, details, headers, status };
      };
      expect(view(unknown)).toEqual(view(wrong));
      expect(view(wrong)).toMatchObject({ code: 'INVALID_CREDENTIALS', status: 401, headers: {} });
    });

    it('does one bcrypt comparison at the configured cost for an unknown email, as for a wrong password', async () => {
      const user = await createUser();
      const { app } = a.current();
      const hasher = app.get(PasswordHasher);
      const verify = jest.spyOn(hasher, 'verify');
      const verifyNothing = jest.spyOn(hasher, 'verifyNothing');
      try {
        await login(user.email, 'not-the-password', freshIp());
        await login(uniqueEmail('nobody'), 'not-the-password', freshIp());
        expect(verify).toHaveBeenCalledTimes(1);
        expect(verifyNothing).toHaveBeenCalledTimes(1);
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
      ['a NUL character', 'lantern\u0000orbit-cobalt'],
      ['a common password', 'iloveyou'],
      ['a common password in capitals', 'PASSWORD1'],
    ])('refuses a password of %s with VALIDATION_FAILED on password', async (_label, password) => {
      const response = await register({ email: uniqueEmail(), password }).expect(400);
      expectErrorShape(response.body, 400, 'VALIDATION_FAILED');
      expect(response.body.details).toEqual([{ field: 'password', message: expect.any(String) }]);
    });

    it.each([
      ['8 characters', 'kx9-tq2z'],
      ['128 characters', 'k'.repeat(127) + 'z'],
      ['8 emoji', '🔐🌋🦉🎻🧊🪐🌵🛶'],
    ])('accepts a password of %s', async (_label, password) => {
      await register({ email: uniqueEmail(), password }).expect(201);
    });

    it('treats two passwords sharing their first 72 bytes as different passwords', async () => {
      const prefix = 'ab'.repeat(36);
      const user = await createUser(`${prefix}-first-tail`);
      await expect(login(user.email, `${prefix}-other-tail`, freshIp())).resolves.toEqual({
        code: 'INVALID_CREDENTIALS',
      });
      await expect(login(user.email, `${prefix}-first-tail`, freshIp())).resolves.toEqual({ code: 'OK' });
    });

    it('treats multi-byte passwords past 72 bytes as different passwords', async () => {
      const prefix = '🔐'.repeat(18); // 72 bytes of UTF-8
      const user = await createUser(`${prefix}🌋`);
      await expect(login(user.email, `${prefix}🦉`, freshIp())).resolves.toEqual({
        code: 'INVALID_CREDENTIALS',
      });
      await expect(login(user.email, `${prefix}🌋`, freshIp())).resolves.toEqual({ code: 'OK' });
    });

    it('logs in with an emoji password', async () => {
      const user = await createUser('🔐🌋🦉🎻🧊🪐🌵🛶');
      await expect(login(user.email, '🔐🌋🦉🎻🧊🪐🌵🛶', freshIp())).resolves.toEqual({ code: 'OK' });
    });

    it('logs in with the other Unicode normalisation form of the registered password', async () => {
      const decomposed = 'cafe\u0301-ﬁre-ｏｒｂｉｔ'; // NFD é, the ﬁ ligature, full-width letters
      const composed = decomposed.normalize('NFKC');
      expect(composed).not.toBe(decomposed);
      const user = await createUser(decomposed);
      await expect(login(user.email, composed, freshIp())).resolves.toEqual({ code: 'OK' });
      const other = await createUser(composed);
      await expect(login(other.email, decomposed, freshIp())).resolves.toEqual({ code: 'OK' });
    });
  });

  describe('hostile input on register', () => {
    it.each([
      ['role', { role: 'admin' }],
      ['id', { id: '00000000-0000-0000-0000-000000000000' }],
      ['createdAt', { createdAt: '2000-01-01T00:00:00Z' }],
    ])('refuses mass assignment of %s', async (field, extra) => {
      const email = uniqueEmail();
      const response = await register({ email, password: STRONG_PASSWORD, ...extra }).expect(400);
      expectErrorShape(response.body, 400, 'VALIDATION_FAILED');
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
      const response = await register(raw.replace('EMAIL', uniqueEmail())).expect(400);
      expectErrorShape(response.body, 400, 'VALIDATION_FAILED');
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
      const response = await register(body).expect(400);
      expectErrorShape(response.body, 400, 'VALIDATION_FAILED');
      expect(response.body.details).toEqual(expect.arrayContaining([expect.objectContaining({ field })]));
    });

    it.each([
      `' OR '1'='1@example.com`,
      `robert'); DROP TABLE users;--@example.com`,
      `x@example.com' UNION SELECT password_hash FROM users--`,
    ])('handles the SQL injection string %p as data, never as SQL', async (email) => {
      const response = await register({ email, password: STRONG_PASSWORD });
      expect([201, 400]).toContain(response.status);
      if (response.status === 400) expectErrorShape(response.body, 400, 'VALIDATION_FAILED');
      else expect(response.body.user.email).toBe(email.toLowerCase());
      await expect(login(email, 'not-the-password', freshIp())).resolves.toEqual({
        code: 'INVALID_CREDENTIALS',
      });
      // The users table is intact.
      await createUser();
    });

    it('refuses an empty body and an empty object with VALIDATION_FAILED', async () => {
      const empty = await request(a.current().url)
        .post('/api/auth/register')
        .set('X-Forwarded-For', freshIp())
        .set('Content-Type', 'application/json')
        .expect(400);
      expectErrorShape(empty.body, 400, 'VALIDATION_FAILED');
      const object = await register({}).expect(400);
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

    it('answers a 1 MB body with 413 PAYLOAD_TOO_LARGE', async () => {
      const response = await register({
        email: uniqueEmail(),
        password: STRONG_PASSWORD,
        pad: 'x'.repeat(1024 * 1024),
      });
      expect(response.status).toBe(413);
      expectErrorShape(response.body, 413, 'PAYLOAD_TOO_LARGE');
    });

    it('answers headers over 16 KiB with 431', async () => {
      const response = await request(a.current().url)
        .get('/health/live')
        .set('X-Padding', 'x'.repeat(20 * 1024));
      expect(response.status).toBe(431);
      expect(response.body).toMatchObject({ statusCode: 431, code: 'HEADERS_TOO_LARGE' });
    });
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

    it('sends helmet headers on every response and no-store on every API response, errors included', async () => {
      const url = a.current().url;
      const responses = await Promise.all([
        register({ email: uniqueEmail(), password: STRONG_PASSWORD }),
        register({ email: 'nope', password: STRONG_PASSWORD }),
        register('{"email":'),
        request(url).get('/api/nothing-here'),
        request(url).get('/health/live'),
        request(url).get('/nothing-here'),
      ]);
      expect(responses.map((response) => response.status)).toEqual([201, 400, 400, 404, 200, 404]);
      for (const response of responses) {
        for (const header of HELMET) expect(response.headers[header]).toBeDefined();
        expect(response.headers['x-powered-by']).toBeUndefined();
      }
      for (const response of [...responses.slice(0, 4), responses[5]]) {
        expect(response.headers['cache-control']).toBe('no-store');
      }
    });
  });

  describe('slow clients', () => {
    it('times out a client that sends its headers too slowly', async () => {
      const { server, url } = a.current();
      const saved = { headersTimeout: server.headersTimeout, requestTimeout: server.requestTimeout };
      server.headersTimeout = 500;
      server.requestTimeout = 1000;
      const { hostname, port } = new URL(url);
      const socket: Socket = connect(Number(port), hostname);
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
      // One header line every 200 ms: never idle, never finished.
      const drip = setInterval(() => {
        if (socket.writable) socket.write(`X-Drip-${Date.now()}: 1\r\n`);
      }, 200);
      try {
        socket.write('POST /api/auth/register HTTP/1.1\r\nHost: localhost\r\n');
        await new Promise<void>((resolve) => socket.on('close', () => resolve()));
        expect(received).toMatch(/^HTTP\/1\.1 408 /);
      } finally {
        clearInterval(drip);
        socket.destroy();
        Object.assign(server, saved);
      }
    }, 45_000);
  });
});

describe('abuse resistance: client IP without TRUST_PROXY', () => {
  const b = appFor({ REGISTER_RATE_LIMIT: '3' });

  it('ignores X-Forwarded-For: registrations count against the socket address', async () => {
    const send = () =>
      request(b.current().url)
        .post('/api/auth/register')
        .set('X-Forwarded-For', freshIp())
        .send({ email: uniqueEmail(), password: STRONG_PASSWORD });
    for (let i = 0; i < 3; i += 1) await send().expect(201);
    const refused = await send().expect(429);
    expectErrorShape(refused.body, 429, 'RATE_LIMITED');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
  });
});

describe('abuse resistance: the limiter store cannot be reached', () => {
  // Nothing listens on port 1: the limiter's Redis is down from the start.
  const c = appFor({ REDIS_URL: 'redis://127.0.0.1:1' });

  it('answers register and login with 503, never skipping the limits', async () => {
    const response = await request(c.current().url)
      .post('/api/auth/register')
      .send({ email: uniqueEmail(), password: STRONG_PASSWORD })
      .expect(503);
    expectErrorShape(response.body, 503, 'SERVICE_UNAVAILABLE');
    await expect(
      c.current().app.get(LoginService).verifyCredentials(uniqueEmail(), STRONG_PASSWORD, {
        ip: '10.9.9.9',
        userAgent: 'abuse',
      }),
    ).rejects.toBeInstanceOf(BackendUnavailableError);
  });

  it('fails closed on an unreachable PostgreSQL store as well', async () => {
    const pool = new Pool({
      connectionString: 'postgresql://postgres@127.0.0.1:1/postgres',
      connectionTimeoutMillis: 1000,
    });
    try {
      const throttle = createLoginThrottle(loadConfig({}), null, () => pool);
      await expect(throttle.assertLoginAllowed('a@example.com', '10.9.9.9')).rejects.toMatchObject({
        component: 'database',
      });
      await expect(throttle.recordLoginFailure('a@example.com', '10.9.9.9')).rejects.toBeInstanceOf(
        BackendUnavailableError,
      );
      await expect(throttle.consumeRegistration('10.9.9.9')).rejects.toBeInstanceOf(BackendUnavailableError);
    } finally {
      await pool.end();
    }
  });
});
