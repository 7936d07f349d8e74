import { request as httpRequest } from 'node:http';
import request, { Response, Test } from 'supertest';
import { DataSource } from 'typeorm';
import { LOCK_BASE_SECONDS, LoginThrottle } from '../src/rate-limit/login-throttle';
import { PasswordHasher } from '../src/users/password-hasher';
import { expectError, refresh, sessionCookieOf, setCookies, tokenLogin } from './support/clients';
import { registerUser, RegisteredUser, STRONG_PASSWORD, uniqueEmail } from './support/factories';
import { deferred, holdPasswordChecks, until } from './support/held';
import { shareDatabase, SharedDatabase } from './support/instances';
import { appFor, createTestStorage, RunningApp, startApp, TestStorage } from './support/test-app';

/**
 * The limits that must hold under concurrency (issue 13): password checks counted before they are checked,
 * the bounded hashing queue, device tokens, locks that attempts cannot lengthen, credentials dated from
 * their password check, and IPv6 clients counted by their /64.
 */

const MAX_FAILURES = 5;
const PARALLEL = 30;
const NEW_PASSWORD = 'quartz-meadow-lantern-91';
const LOGIN_ROUTES = [
  ['session', '/api/auth/session/login'],
  ['token', '/api/auth/token/login'],
] as const;

/** What a login body carries of a registered user. */
function creds(user: RegisteredUser): { email: string; password: string } {
  return { email: user.email, password: user.password };
}

function retryAfterOf(response: Response): number {
  expect(response.headers['retry-after']).toMatch(/^\d+$/);
  return Number(response.headers['retry-after']);
}

/** The `did=…` pair a login set, and its attributes. */
function deviceCookieOf(response: Response): { pair: string; attributes: string } {
  const cookie = setCookies(response).find((value) => /^(__Host-)?did=/.test(value));
  expect(cookie).toBeDefined();
  const [pair, ...attributes] = cookie!.split(';');
  return { pair, attributes: attributes.join(';') };
}

async function passwordHashOf(app: RunningApp, email: string): Promise<string> {
  const rows: { password_hash: string }[] = await app.app
    .get(DataSource)
    .query('SELECT password_hash FROM users WHERE email = $1', [email]);
  return rows[0].password_hash;
}

describe('limits under concurrency', () => {
  const a = appFor();
  const url = () => a.current().url;

  const login = (path: string, body: object, cookie?: string): Test => {
    const test = request(url()).post(path).send(body);
    return cookie ? test.set('Cookie', cookie) : test;
  };

  async function lockAccount(email: string): Promise<void> {
    for (let i = 0; i < MAX_FAILURES; i += 1) {
      expectError(
        await login('/api/auth/token/login', { email, password: `wrong-${i}` }),
        401,
        'INVALID_CREDENTIALS',
      );
    }
    expectError(
      await login('/api/auth/token/login', { email, password: 'wrong-again' }),
      429,
      'RATE_LIMITED',
    );
  }

  /**
   * Sends PARALLEL attempts against one account, the right password among them, with every bcrypt
   * comparison against the account's hash held until each attempt was either refused or reached bcrypt:
   * every attempt is in flight at once. Returns how many were compared, and the responses.
   */
  async function guessInParallel(
    user: RegisteredUser,
    send: (password: string) => Test,
  ): Promise<{ checked: number; responses: Response[] }> {
    const hash = await passwordHashOf(a.current(), user.email);
    const hold = holdPasswordChecks(a.current().app, (_password, against) => against === hash);
    try {
      let answered = 0;
      const guesses = Array.from({ length: PARALLEL }, (_, i) =>
        i === PARALLEL / 2 ? user.password : `wrong-guess-${i}`,
      );
      const pending = guesses.map((password) =>
        Promise.resolve(send(password)).then((response) => {
          answered += 1;
          return response;
        }),
      );
      await until(() => hold.entered() + answered === PARALLEL);
      const checked = hold.entered();
      hold.release();
      return { checked, responses: await Promise.all(pending) };
    } finally {
      hold.restore();
    }
  }

  function expectAtMostTheLimitChecked(
    { checked, responses }: { checked: number; responses: Response[] },
    success: number,
    failure: number,
  ): void {
    expect(checked).toBeLessThanOrEqual(MAX_FAILURES);
    const refused = responses.filter((response) => response.status === 429);
    expect(refused).toHaveLength(PARALLEL - checked);
    for (const response of refused) expect(response.body).toMatchObject({ code: 'RATE_LIMITED' });
    const statuses = responses.filter((response) => response.status !== 429).map((r) => r.status);
    expect(statuses.every((status) => status === success || status === failure)).toBe(true);
  }

  describe('parallel guesses are counted before they are checked', () => {
    it.each(LOGIN_ROUTES)(
      `%s login: of ${PARALLEL} parallel guesses with the right one among them, at most the limit reach bcrypt`,
      async (_method, path) => {
        const user = await registerUser(url());
        const outcome = await guessInParallel(user, (password) =>
          login(path, { email: user.email, password }),
        );
        expectAtMostTheLimitChecked(outcome, 200, 401);
      },
    );

    it('POST /api/me/password: parallel guesses of currentPassword pass the limit no more than logins do', async () => {
      const user = await registerUser(url());
      const caller = await tokenLogin(url(), user);
      const outcome = await guessInParallel(user, (password) =>
        caller.auth(
          request(url())
            .post('/api/me/password')
            .send({ currentPassword: password, newPassword: NEW_PASSWORD }),
        ),
      );
      expectAtMostTheLimitChecked(outcome, 204, 400);
    });

    it('DELETE /api/me: parallel guesses of the password pass the limit no more than logins do', async () => {
      const user = await registerUser(url());
      const caller = await tokenLogin(url(), user);
      const outcome = await guessInParallel(user, (password) =>
        caller.auth(request(url()).delete('/api/me').send({ password })),
      );
      expectAtMostTheLimitChecked(outcome, 204, 400);
    });

    it('attempts refused during a lock do not lengthen it, nor do parallel ones that raced it', async () => {
      const user = await registerUser(url());
      for (let i = 0; i < MAX_FAILURES - 1; i += 1) {
        await login('/api/auth/session/login', { email: user.email, password: `wrong-${i}` }).expect(401);
      }
      const racing = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          login('/api/auth/session/login', { email: user.email, password: `racing-${i}` }),
        ),
      );
      expect(racing.filter((response) => response.status === 401)).toHaveLength(1);
      expect(racing.filter((response) => response.status === 429)).toHaveLength(19);
      for (let i = 0; i < 10; i += 1) {
        const during = await login('/api/auth/token/login', { email: user.email, password: `during-${i}` });
        expectError(during, 429, 'RATE_LIMITED');
        expect(retryAfterOf(during)).toBeLessThanOrEqual(LOCK_BASE_SECONDS);
      }
      const owner = await login('/api/auth/token/login', creds(user));
      expectError(owner, 429, 'RATE_LIMITED');
      expect(retryAfterOf(owner)).toBeLessThanOrEqual(LOCK_BASE_SECONDS);
    });
  });

  describe('the hashing queue', () => {
    it('drops the check of a client that disconnected before its turn: it is neither done nor counted', async () => {
      const user = await registerUser(url());
      for (let i = 0; i < MAX_FAILURES - 1; i += 1) {
        await login('/api/auth/token/login', { email: user.email, password: `wrong-${i}` }).expect(401);
      }
      const queue = a.current().app.get(PasswordHasher).queue;
      const gate = deferred();
      const holders = Array.from({ length: queue.limit }, () => queue.run(() => gate.promise));
      // Counts the hashing work that actually gets a slot, as opposed to work that only joined the queue.
      const run = queue.run.bind(queue);
      let ran = 0;
      queue.run = <T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> =>
        run(() => {
          ran += 1;
          return task();
        }, signal);
      try {
        const { hostname, port } = new URL(url());
        const gone = httpRequest({
          hostname,
          port,
          path: '/api/auth/token/login',
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
        });
        gone.on('error', () => undefined);
        gone.end(JSON.stringify({ email: user.email, password: 'wrong-and-gone' }));
        await until(() => queue.waitingCount === 1);
        gone.destroy();
        await until(() => queue.waitingCount === 0);
        gate.resolve();
        await Promise.all(holders);
        expect(ran).toBe(0);
        // Had the dropped guess been checked, or counted, it would have been the fifth failure: a lock.
        await login('/api/auth/token/login', creds(user)).expect(200);
        expect(ran).toBe(1);
      } finally {
        gate.resolve();
        queue.run = run;
      }
    });
  });

  it('clearAccountLock (the password reset) ends the lock and the failure count', async () => {
    const user = await registerUser(url());
    await lockAccount(user.email);
    await a.current().app.get(LoginThrottle).clearAccountLock(user.email);
    for (let i = 0; i < MAX_FAILURES - 1; i += 1) {
      await login('/api/auth/token/login', { email: user.email, password: `again-${i}` }).expect(401);
    }
    await login('/api/auth/token/login', creds(user)).expect(200);
  });

  describe('device tokens', () => {
    it('let the owner in during a lock, by cookie (session login) and by body (token login)', async () => {
      const user = await registerUser(url());
      const session = await login('/api/auth/session/login', creds(user)).expect(200);
      const did = deviceCookieOf(session);
      expect(did.attributes).toMatch(/HttpOnly/i);
      expect(did.attributes).toMatch(/Path=\//);
      expect(did.attributes).toMatch(/SameSite=Strict/i);
      expect(did.attributes).toMatch(/Max-Age=31536000/);
      const token = await login('/api/auth/token/login', creds(user)).expect(200);
      const deviceToken = token.body.deviceToken as string;
      expect(typeof deviceToken).toBe('string');
      deviceCookieOf(token);

      await lockAccount(user.email);
      expectError(await login('/api/auth/session/login', creds(user)), 429, 'RATE_LIMITED');
      const byCookie = await login('/api/auth/session/login', creds(user), did.pair).expect(200);
      expect(sessionCookieOf(byCookie)).toBeDefined();
      const byBody = await login('/api/auth/token/login', { ...creds(user), deviceToken }).expect(200);
      expect(typeof byBody.body.accessToken).toBe('string');
    });

    it('let the owner change the password during a lock from the device its session runs on', async () => {
      const user = await registerUser(url());
      const session = await login('/api/auth/session/login', creds(user)).expect(200);
      const did = deviceCookieOf(session);
      const sid = sessionCookieOf(session)!;
      await lockAccount(user.email);
      const change = (cookie: string) =>
        request(url())
          .post('/api/me/password')
          .set('Cookie', cookie)
          .set('X-CSRF-Token', session.body.csrfToken as string)
          .send({ currentPassword: user.password, newPassword: NEW_PASSWORD });
      expectError(await change(sid), 429, 'RATE_LIMITED');
      await change(`${sid}; ${did.pair}`).expect(204);
    });

    it("count a device's failures on its own counter, with the same limit, leaving the account unlocked", async () => {
      const user = await registerUser(url());
      const { deviceToken } = (await login('/api/auth/token/login', creds(user)).expect(200)).body as {
        deviceToken: string;
      };
      for (let i = 0; i < MAX_FAILURES; i += 1) {
        await login('/api/auth/token/login', {
          email: user.email,
          password: `typo-${i}`,
          deviceToken,
        }).expect(401);
      }
      const locked = await login('/api/auth/token/login', { ...creds(user), deviceToken });
      expectError(locked, 429, 'RATE_LIMITED');
      expect(retryAfterOf(locked)).toBeLessThanOrEqual(LOCK_BASE_SECONDS);
      await login('/api/auth/token/login', creds(user)).expect(200);
    });

    it("refuse another account's device token: it counts as no device and meets that account's lock", async () => {
      const owner = await registerUser(url());
      const victim = await registerUser(url());
      const ownerLogin = await login('/api/auth/session/login', creds(owner)).expect(200);
      const did = deviceCookieOf(ownerLogin);
      const { deviceToken } = (await login('/api/auth/token/login', creds(owner)).expect(200)).body as {
        deviceToken: string;
      };
      await lockAccount(victim.email);
      expectError(await login('/api/auth/session/login', creds(victim), did.pair), 429, 'RATE_LIMITED');
      expectError(
        await login('/api/auth/token/login', { ...creds(victim), deviceToken }),
        429,
        'RATE_LIMITED',
      );
      const forged = `${victim.id}.${deviceToken.split('.').slice(1).join('.')}`;
      expectError(
        await login('/api/auth/token/login', { ...creds(victim), deviceToken: forged }),
        429,
        'RATE_LIMITED',
      );
    });

    it("are dropped when the account's password changes", async () => {
      const user = await registerUser(url());
      const did = deviceCookieOf(await login('/api/auth/session/login', creds(user)).expect(200));
      const caller = await tokenLogin(url(), user);
      const { deviceToken } = (await login('/api/auth/token/login', creds(user)).expect(200)).body as {
        deviceToken: string;
      };
      await caller
        .auth(request(url()).post('/api/me/password'))
        .send({ currentPassword: user.password, newPassword: NEW_PASSWORD })
        .expect(204);
      await lockAccount(user.email);
      const changed = { email: user.email, password: NEW_PASSWORD };
      expectError(await login('/api/auth/session/login', changed, did.pair), 429, 'RATE_LIMITED');
      expectError(await login('/api/auth/token/login', { ...changed, deviceToken }), 429, 'RATE_LIMITED');
    });
  });

  describe('a login in flight across a revocation yields nothing that authenticates', () => {
    const revocations: [string, (user: RegisteredUser, bearer: string) => Test][] = [
      [
        'a password change',
        (user, bearer) =>
          request(url())
            .post('/api/me/password')
            .set('Authorization', `Bearer ${bearer}`)
            .send({ currentPassword: user.password, newPassword: NEW_PASSWORD }),
      ],
      [
        'logout-all',
        (_user, bearer) => request(url()).post('/api/me/logout-all').set('Authorization', `Bearer ${bearer}`),
      ],
    ];

    it.each(revocations)('%s committed while both logins check the password', async (_label, revoke) => {
      const user = await registerUser(url());
      const changer = await tokenLogin(url(), user);
      let holding = true;
      const hold = holdPasswordChecks(a.current().app, (password) => holding && password === user.password);
      try {
        const inFlight = Promise.all([
          Promise.resolve(login('/api/auth/session/login', creds(user))),
          Promise.resolve(login('/api/auth/token/login', creds(user))),
        ]);
        await until(() => hold.entered() === 2);
        holding = false;
        expect((await revoke(user, changer.accessToken)).status).toBe(204);
        hold.release();
        const [session, token] = await inFlight;
        expect([session.status, token.status]).toEqual([200, 200]);

        const cookie = sessionCookieOf(session)!;
        expectError(await request(url()).get('/api/me').set('Cookie', cookie), 401, 'SESSION_INVALID');
        expectError(
          await request(url())
            .get('/api/me')
            .set('Authorization', `Bearer ${token.body.accessToken as string}`),
          401,
          'TOKEN_REVOKED',
        );
        expectError(await refresh(url(), token.body.refreshToken as string), 401, 'REFRESH_TOKEN_INVALID');
      } finally {
        hold.release();
        hold.restore();
      }
    });

    it('the account deleted while both logins check the password', async () => {
      const user = await registerUser(url());
      const owner = await tokenLogin(url(), user);
      let holding = true;
      const hold = holdPasswordChecks(a.current().app, (password) => holding && password === user.password);
      try {
        const inFlight = Promise.all([
          Promise.resolve(login('/api/auth/session/login', creds(user))),
          Promise.resolve(login('/api/auth/token/login', creds(user))),
        ]);
        await until(() => hold.entered() === 2);
        holding = false;
        await owner.auth(request(url()).delete('/api/me')).send({ password: user.password }).expect(204);
        hold.release();
        const [session, token] = await inFlight;
        // The session store holds no foreign key: the session is made, and refused on its first use.
        const cookie = sessionCookieOf(session);
        if (cookie) {
          expectError(await request(url()).get('/api/me').set('Cookie', cookie), 401, 'SESSION_INVALID');
        }
        // The family's user is gone: the token login fails rather than hand out a family of no one.
        expectError(token, 401, 'INVALID_CREDENTIALS');
      } finally {
        hold.release();
        hold.restore();
      }
    });

    it("keeps the changer's own token family working after a password change made with it", async () => {
      const user = await registerUser(url());
      const caller = await tokenLogin(url(), user);
      await caller
        .auth(request(url()).post('/api/me/password'))
        .send({ currentPassword: user.password, newPassword: NEW_PASSWORD })
        .expect(204);
      const renewed = await refresh(url(), caller.refreshToken);
      expect(renewed.status).toBe(200);
    });
  });
});

describe('limits under concurrency: two instances on one storage', () => {
  let storage: TestStorage;
  let shared: SharedDatabase;
  const apps: RunningApp[] = [];

  beforeAll(async () => {
    storage = await createTestStorage();
    shared = await shareDatabase(storage.env);
    apps.push(await startApp(shared.env));
    apps.push(await startApp(shared.env));
  }, 90_000);

  afterAll(async () => {
    for (const app of apps) await app.close();
    await shared?.close();
    await storage?.drop();
  }, 60_000);

  it('a device token from one instance lets the owner through a lock made on the other', async () => {
    const [first, second] = apps;
    const user = await registerUser(first.url);
    const did = deviceCookieOf(
      await request(first.url).post('/api/auth/session/login').send(creds(user)).expect(200),
    );
    const { deviceToken } = (
      await request(first.url).post('/api/auth/token/login').send(creds(user)).expect(200)
    ).body as { deviceToken: string };
    for (let i = 0; i < MAX_FAILURES; i += 1) {
      await request(second.url)
        .post('/api/auth/token/login')
        .send({ email: user.email, password: `wrong-${i}` })
        .expect(401);
    }
    expectError(
      await request(first.url).post('/api/auth/token/login').send(creds(user)),
      429,
      'RATE_LIMITED',
    );
    await request(second.url)
      .post('/api/auth/session/login')
      .set('Cookie', did.pair)
      .send(creds(user))
      .expect(200);
    await request(second.url)
      .post('/api/auth/token/login')
      .send({ ...creds(user), deviceToken })
      .expect(200);
  });
});

describe('limits under concurrency: hashing is bounded', () => {
  // Real bcrypt work (cost 12): the queue's bound is a few seconds of it.
  const b = appFor({ BCRYPT_COST: '12' });

  it('answers checks past a few seconds of queued hashing with 503 and Retry-After, the others as usual', async () => {
    const responses = await Promise.all(
      Array.from({ length: 60 }, () =>
        request(b.current().url)
          .post('/api/auth/token/login')
          .send({ email: uniqueEmail('flood'), password: STRONG_PASSWORD }),
      ),
    );
    const busy = responses.filter((response) => response.status === 503);
    expect(busy.length).toBeGreaterThan(0);
    for (const response of busy) {
      expectError(response, 503, 'SERVICE_UNAVAILABLE');
      expect(retryAfterOf(response)).toBeGreaterThan(0);
    }
    const checked = responses.filter((response) => response.status !== 503);
    expect(checked.length).toBeGreaterThan(0);
    for (const response of checked) expectError(response, 401, 'INVALID_CREDENTIALS');
  }, 90_000);
});

describe('limits under concurrency: IPv6 clients count by their /64', () => {
  const c = appFor({ TRUST_PROXY: '1', REGISTER_RATE_LIMIT: '3', LOGIN_IP_MAX_FAILURES: '3' });
  const from = (ip: string, path: string, body: object) =>
    request(c.current().url).post(path).set('X-Forwarded-For', ip).send(body);

  it('limits registrations from addresses rotating inside one /64, and not its neighbour', async () => {
    for (let i = 1; i <= 3; i += 1) {
      await from(`2001:db8:7:1::${i.toString(16)}`, '/api/auth/register', {
        email: uniqueEmail('v6'),
        password: STRONG_PASSWORD,
      }).expect(201);
    }
    const refused = await from('2001:db8:7:1:ffff:1234:5678:9abc', '/api/auth/register', {
      email: uniqueEmail('v6'),
      password: STRONG_PASSWORD,
    });
    expectError(refused, 429, 'RATE_LIMITED');
    await from('2001:db8:7:2::1', '/api/auth/register', {
      email: uniqueEmail('v6'),
      password: STRONG_PASSWORD,
    }).expect(201);
  });

  it('limits login failures from addresses rotating inside one /64', async () => {
    const user = await registerUser(c.current().url);
    for (let i = 1; i <= 3; i += 1) {
      await from(`2001:db8:8:1::${i}`, '/api/auth/session/login', {
        email: uniqueEmail('nobody'),
        password: 'wrong-password',
      }).expect(401);
    }
    expectError(await from('2001:db8:8:1::99', '/api/auth/session/login', creds(user)), 429, 'RATE_LIMITED');
    await from('2001:db8:8:2::1', '/api/auth/session/login', creds(user)).expect(200);
  });

  it('counts an IPv4-mapped IPv6 address as the IPv4 address', async () => {
    for (let i = 0; i < 3; i += 1) {
      await from('::ffff:192.0.2.9', '/api/auth/register', {
        email: uniqueEmail('mapped'),
        password: STRONG_PASSWORD,
      }).expect(201);
    }
    expectError(
      await from('192.0.2.9', '/api/auth/register', {
        email: uniqueEmail('mapped'),
        password: STRONG_PASSWORD,
      }),
      429,
      'RATE_LIMITED',
    );
  });
});
