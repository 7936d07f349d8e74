import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { keyIdOf } from '../src/mfa/mfa-keyring';
import { TotpClock } from '../src/mfa/totp-clock';
import {
  asBearer,
  asSession,
  Caller,
  expectError,
  refresh,
  sessionCookieOf,
  sessionLogin,
  setCookies,
  signIn,
  sleep,
  tokenLogin,
} from './support/clients';
import { registerUser, RegisteredUser, uniqueEmail } from './support/factories';
import {
  EnrolledFactor,
  enrolSecondFactor,
  jwtClaims,
  loginChallenge,
  loginChallenges,
  totpAt,
  verifyMfa,
} from './support/mfa';
import { createTestStorage, RunningApp, startApp, TestStorage } from './support/test-app';

const ADMIN = { email: uniqueEmail('admin'), password: 'harbor-violet-admin-73' };
const STEP_MS = 30_000;

/**
 * TOTP second factor over HTTP. The service reads TOTP time from its TotpClock provider, which these tests
 * pin and move (`now`), and every code is computed here from the secret the service handed out.
 */
describe('second factor (TOTP)', () => {
  let storage: TestStorage;
  let running: RunningApp;
  let url: string;
  /** The service's TOTP time; moved forward by a step whenever a test needs a fresh code for a user. */
  let now = Math.floor(Date.now() / STEP_MS) * STEP_MS + 10_000;

  beforeAll(async () => {
    storage = await createTestStorage();
    running = await startApp({ ...storage.env, ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password });
    url = running.url;
    jest.spyOn(running.app.get(TotpClock), 'now').mockImplementation(() => now);
  });

  afterAll(async () => {
    await running?.close();
    await storage?.drop();
  });

  /** A fresh code for the next time step, so codes of earlier tests on the same user are never replays. */
  function nextCode(factor: EnrolledFactor): string {
    now += STEP_MS;
    return totpAt(factor.secret, now);
  }

  async function enrolledUser(): Promise<{ user: RegisteredUser; factor: EnrolledFactor }> {
    const user = await registerUser(url);
    const factor = await enrolSecondFactor(url, await tokenLogin(url, user), user.password, now);
    return { user, factor };
  }

  const admin = (): Promise<Caller> => signIn(url, ADMIN, 'token');

  async function auditOf(userId: string, type: string): Promise<{ detail: Record<string, unknown> }[]> {
    const caller = await admin();
    const response = await caller
      .auth(request(url).get(`/api/admin/audit?userId=${userId}&type=${type}&limit=100`))
      .expect(200);
    return (response.body as { items: { detail: Record<string, unknown> }[] }).items;
  }

  type Me = { user: { id: string; mfaEnabled: boolean }; auth: { method: string; mfa: boolean } };
  async function me(caller: Caller): Promise<Me> {
    const response = await caller.auth(request(url).get('/api/me')).expect(200);
    return response.body as Me;
  }

  describe('enrolment', () => {
    it.each(['session', 'token'] as const)(
      'by %s: password, pending secret, confirm with a code, ten recovery codes, mfaEnabled',
      async (method) => {
        const user = await registerUser(url);
        const caller = await signIn(url, user, method);

        const wrong = await caller
          .auth(request(url).post('/api/me/mfa/totp'))
          .send({ password: 'not-it-at-all' });
        expectError(wrong, 400, 'VALIDATION_FAILED');
        expect((wrong.body as { details: { field: string }[] }).details).toEqual([
          expect.objectContaining({ field: 'password' }),
        ]);

        const started = await caller
          .auth(request(url).post('/api/me/mfa/totp'))
          .send({ password: user.password })
          .expect(200);
        const { secret, otpauthUrl } = started.body as { secret: string; otpauthUrl: string };
        expect(secret).toMatch(/^[A-Z2-7]{32}$/);
        const parsed = new URL(otpauthUrl);
        expect(`${parsed.protocol}//${parsed.host}`).toBe('otpauth://totp');
        expect(decodeURIComponent(parsed.pathname)).toBe(`/Auth service:${user.email}`);
        expect(parsed.searchParams.get('issuer')).toBe('Auth service');
        expect(parsed.searchParams.get('secret')).toBe(secret);
        // Pending: not enabled, and login still answers with tokens.
        expect((await me(caller)).user.mfaEnabled).toBe(false);
        await tokenLogin(url, user);

        // A new enrolment replaces the pending one: the first secret's codes no longer confirm.
        const again = await caller
          .auth(request(url).post('/api/me/mfa/totp'))
          .send({ password: user.password })
          .expect(200);
        const second = (again.body as { secret: string }).secret;
        expect(second).not.toBe(secret);
        expectError(
          await caller
            .auth(request(url).post('/api/me/mfa/totp/confirm'))
            .send({ code: totpAt(secret, now) }),
          401,
          'MFA_INVALID',
        );

        const confirmed = await caller
          .auth(request(url).post('/api/me/mfa/totp/confirm'))
          .send({ code: totpAt(second, now) })
          .expect(200);
        const codes = (confirmed.body as { recoveryCodes: string[] }).recoveryCodes;
        expect(codes).toHaveLength(10);
        expect(new Set(codes).size).toBe(10);
        for (const code of codes) expect(code).toMatch(/^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/);
        expect((await me(caller)).user.mfaEnabled).toBe(true);
        expect(await auditOf(user.id, 'mfa.enabled')).toHaveLength(1);

        // An active factor is not silently replaced by a new enrolment.
        expectError(
          await caller.auth(request(url).post('/api/me/mfa/totp')).send({ password: user.password }),
          400,
          'VALIDATION_FAILED',
        );
      },
    );

    it('counts wrong enrolment passwords like login failures', async () => {
      const user = await registerUser(url);
      const caller = await tokenLogin(url, user);
      for (let i = 0; i < 5; i += 1) {
        expectError(
          await caller.auth(request(url).post('/api/me/mfa/totp')).send({ password: `wrong-${i}-password` }),
          400,
          'VALIDATION_FAILED',
        );
      }
      expectError(
        await caller.auth(request(url).post('/api/me/mfa/totp')).send({ password: user.password }),
        429,
        'RATE_LIMITED',
      );
    });
  });

  describe('login in two steps', () => {
    it('session: no cookie until the code, then a fresh session that says mfa', async () => {
      const { user, factor } = await enrolledUser();
      // A session the browser held before must not become the authenticated one (fixation).
      const before = await sessionLogin(url, await registerUser(url));
      const mfaToken = await loginChallenge(url, user, 'session');

      const verified = await request(url)
        .post('/api/auth/mfa/verify')
        .set('Cookie', before.cookie)
        .send({ mfaToken, code: nextCode(factor) });
      expect(verified.status).toBe(200);
      expect(verified.body).toEqual({
        user: expect.objectContaining({ email: user.email, mfaEnabled: true }),
        csrfToken: expect.any(String),
        expiresAt: expect.any(String),
      });
      const cookie = sessionCookieOf(verified);
      expect(cookie).toBeDefined();
      expect(cookie).not.toBe(before.cookie);
      const session = asSession(cookie!, (verified.body as { csrfToken: string }).csrfToken);
      const info = await me(session);
      expect(info.auth).toMatchObject({ method: 'session', mfa: true });

      // The mfaToken worked once.
      expectError(await verifyMfa(url, mfaToken, nextCode(factor)), 401, 'MFA_INVALID');
      const succeeded = await auditOf(user.id, 'login.succeeded');
      expect(succeeded[0].detail).toMatchObject({ method: 'session', mfa: true });
    });

    it('session: a cross-site page cannot complete the login (login CSRF)', async () => {
      const { user, factor } = await enrolledUser();
      const mfaToken = await loginChallenge(url, user, 'session');
      expectError(
        await request(url)
          .post('/api/auth/mfa/verify')
          .set('Origin', 'https://evil.example')
          .send({ mfaToken, code: nextCode(factor) }),
        403,
        'CSRF_FAILED',
      );
      expect(setCookies(await verifyMfa(url, mfaToken, nextCode(factor)))).not.toHaveLength(0);
    });

    it('token: the tokens after the code, amr says otp, and keeps saying it after a refresh', async () => {
      const { user, factor } = await enrolledUser();
      const mfaToken = await loginChallenge(url, user, 'token');
      // A token login without a cookie is not a browser credential: any origin may complete it.
      const verified = await request(url)
        .post('/api/auth/mfa/verify')
        .set('Origin', 'https://app.elsewhere.example')
        .send({ mfaToken, code: nextCode(factor) });
      expect(verified.status).toBe(200);
      const body = verified.body as { accessToken: string; refreshToken: string; tokenType: string };
      expect(body).toMatchObject({ tokenType: 'Bearer', refreshToken: expect.any(String) });
      expect(jwtClaims(body.accessToken).amr).toEqual(['pwd', 'otp']);
      expect((await me(asBearer(body.accessToken, body.refreshToken))).auth).toMatchObject({
        method: 'token',
        mfa: true,
      });

      const refreshed = await refresh(url, body.refreshToken);
      expect(refreshed.status).toBe(200);
      const rotated = refreshed.body as { accessToken: string; refreshToken: string };
      expect(jwtClaims(rotated.accessToken).amr).toEqual(['pwd', 'otp']);
      expect((await me(asBearer(rotated.accessToken, rotated.refreshToken))).auth.mfa).toBe(true);
    });

    it('a user without a factor gets amr ["pwd"] and auth.mfa false, by either method', async () => {
      const user = await registerUser(url);
      const tokens = await tokenLogin(url, user);
      expect(jwtClaims(tokens.accessToken).amr).toEqual(['pwd']);
      expect((await me(tokens)).auth.mfa).toBe(false);
      expect((await me(await sessionLogin(url, user))).auth.mfa).toBe(false);
    });

    it('token with refreshTokenInCookie: the rt cookie and a csrfToken after the code', async () => {
      const { user, factor } = await enrolledUser();
      const mfaToken = await loginChallenge(url, user, 'token', { refreshTokenInCookie: true });
      expectError(
        await request(url)
          .post('/api/auth/mfa/verify')
          .set('Sec-Fetch-Site', 'cross-site')
          .send({ mfaToken, code: nextCode(factor) }),
        403,
        'CSRF_FAILED',
      );
      const verified = await verifyMfa(url, mfaToken, nextCode(factor));
      expect(verified.status).toBe(200);
      const body = verified.body as { csrfToken: string; refreshToken?: string; accessToken: string };
      expect(body.refreshToken).toBeUndefined();
      expect(body.csrfToken).toEqual(expect.any(String));
      const rt = setCookies(verified).find((cookie) => cookie.startsWith('rt='));
      expect(rt).toMatch(/HttpOnly/);
      expect(rt).toMatch(/Path=\/api\/auth\/token/);
      const refreshed = await request(url)
        .post('/api/auth/token/refresh')
        .set('Cookie', rt!.split(';')[0])
        .set('X-CSRF-Token', body.csrfToken)
        .send({});
      expect(refreshed.status).toBe(200);
      expect(jwtClaims((refreshed.body as { accessToken: string }).accessToken).amr).toEqual(['pwd', 'otp']);
    });

    it('an expired mfaToken, an unknown one and a wrong code are MFA_INVALID', async () => {
      const { user, factor } = await enrolledUser();
      expectError(await verifyMfa(url, 'not-a-token', nextCode(factor)), 401, 'MFA_INVALID');
      expectError(
        await verifyMfa(url, await loginChallenge(url, user, 'token'), '000000'),
        401,
        'MFA_INVALID',
      );
      const mfaToken = await loginChallenge(url, user, 'token');
      // Five minutes pass (the database keeps the expiry; this moves it rather than the database's clock).
      await running.app
        .get(DataSource)
        .query("UPDATE mfa_login_tokens SET expires_at = now() - interval '1 second' WHERE user_id = $1", [
          user.id,
        ]);
      expectError(await verifyMfa(url, mfaToken, nextCode(factor)), 401, 'MFA_INVALID');
    });

    it('a password change between the password and the code voids the pending login', async () => {
      const { user, factor } = await enrolledUser();
      const mfaToken = await loginChallenge(url, user, 'session');
      const caller = await completedTokenLogin(user, factor);
      const newPassword = 'quartz-meadow-lantern-19';
      await caller
        .auth(request(url).post('/api/me/password'))
        .send({ currentPassword: user.password, newPassword, code: nextCode(factor) })
        .expect(204);
      expectError(await verifyMfa(url, mfaToken, nextCode(factor)), 401, 'MFA_INVALID');
    });

    it('the completed login is dated from the password check of the first step', async () => {
      const { user, factor } = await enrolledUser();
      const mfaToken = await loginChallenge(url, user, 'token');
      const afterPassword = Math.floor(Date.now() / 1000);
      // Not a race: only waits for the clock to pass a whole second, so the two dates differ.
      while (Math.floor(Date.now() / 1000) <= afterPassword) await sleep(50);
      const completed = await verifyMfa(url, mfaToken, nextCode(factor));
      expect(completed.status).toBe(200);
      const claims = jwtClaims((completed.body as { accessToken: string }).accessToken);
      expect(claims.iat).toBeLessThanOrEqual(afterPassword);
      expect(claims.amr).toEqual(['pwd', 'otp']);
    });
  });

  describe('codes', () => {
    it('a recovery code works once in place of a TOTP code, and is audited', async () => {
      const { user, factor } = await enrolledUser();
      const [code] = factor.recoveryCodes;
      const verified = await verifyMfa(url, await loginChallenge(url, user, 'token'), code.toLowerCase());
      expect(verified.status).toBe(200);
      expect(jwtClaims((verified.body as { accessToken: string }).accessToken).amr).toEqual(['pwd', 'otp']);
      const used = await auditOf(user.id, 'mfa.recovery_code_used');
      expect(used).toHaveLength(1);
      expect(used[0].detail).toMatchObject({ remaining: 9 });

      expectError(await verifyMfa(url, await loginChallenge(url, user, 'token'), code), 401, 'MFA_INVALID');
      // Another of the ten still works.
      expect(
        (await verifyMfa(url, await loginChallenge(url, user, 'session'), factor.recoveryCodes[1])).status,
      ).toBe(200);
    });

    it('regenerating recovery codes voids the old ones', async () => {
      const { user, factor } = await enrolledUser();
      const caller = await completedTokenLogin(user, factor);
      expectError(
        await caller.auth(request(url).post('/api/me/mfa/recovery-codes')).send({ code: '123456' }),
        401,
        'MFA_INVALID',
      );
      const response = await caller
        .auth(request(url).post('/api/me/mfa/recovery-codes'))
        .send({ code: nextCode(factor) })
        .expect(200);
      const fresh = (response.body as { recoveryCodes: string[] }).recoveryCodes;
      expect(fresh).toHaveLength(10);
      expect(fresh.some((code) => factor.recoveryCodes.includes(code))).toBe(false);
      expectError(
        await verifyMfa(url, await loginChallenge(url, user, 'token'), factor.recoveryCodes[2]),
        401,
        'MFA_INVALID',
      );
      expect((await verifyMfa(url, await loginChallenge(url, user, 'token'), fresh[0])).status).toBe(200);
    });

    it('a TOTP code is accepted once: a replay in another login or a step-up is refused', async () => {
      const { user, factor } = await enrolledUser();
      const code = nextCode(factor);
      expect((await verifyMfa(url, await loginChallenge(url, user, 'token'), code)).status).toBe(200);
      expectError(await verifyMfa(url, await loginChallenge(url, user, 'session'), code), 401, 'MFA_INVALID');
      const caller = await completedTokenLogin(user, factor);
      expectError(
        await caller.auth(request(url).delete('/api/me')).send({ password: user.password, code }),
        401,
        'MFA_INVALID',
      );
    });

    it('accepts a clock drift of one step either way, not two', async () => {
      const { user, factor } = await enrolledUser();
      now += 10 * STEP_MS;
      const at = (steps: number) => totpAt(factor.secret, now + steps * STEP_MS);
      expectError(await verifyMfa(url, await loginChallenge(url, user, 'token'), at(-2)), 401, 'MFA_INVALID');
      expectError(await verifyMfa(url, await loginChallenge(url, user, 'token'), at(2)), 401, 'MFA_INVALID');
      expect((await verifyMfa(url, await loginChallenge(url, user, 'token'), at(-1))).status).toBe(200);
      expect((await verifyMfa(url, await loginChallenge(url, user, 'token'), at(1))).status).toBe(200);
      // The current step's code is older than one already used: refused as well, so no code comes back.
      expectError(await verifyMfa(url, await loginChallenge(url, user, 'token'), at(0)), 401, 'MFA_INVALID');
    });

    it('one code used by dozens of logins at once: exactly one succeeds', async () => {
      const { user, factor } = await enrolledUser();
      const tokens = await loginChallenges(url, user, 30, (i) => (i % 2 ? 'token' : 'session'));
      const code = nextCode(factor);
      const responses = await Promise.all(tokens.map((mfaToken) => verifyMfa(url, mfaToken, code)));
      expect(responses.filter((response) => response.status === 200)).toHaveLength(1);
      // The others are replays, which count as wrong codes: past the limit the account locks.
      for (const response of responses.filter((r) => r.status !== 200)) {
        expect([401, 429]).toContain(response.status);
        expect((response.body as { code: string }).code).toBe(
          response.status === 401 ? 'MFA_INVALID' : 'RATE_LIMITED',
        );
      }
    });

    it('one recovery code used by dozens of logins at once: exactly one succeeds', async () => {
      const { user, factor } = await enrolledUser();
      const tokens = await loginChallenges(url, user, 30);
      const responses = await Promise.all(
        tokens.map((mfaToken) => verifyMfa(url, mfaToken, factor.recoveryCodes[0])),
      );
      expect(responses.filter((response) => response.status === 200)).toHaveLength(1);
    });

    it('one mfaToken tried with dozens of codes at once gets at most five checks', async () => {
      const { user, factor } = await enrolledUser();
      const mfaToken = await loginChallenge(url, user, 'token');
      const right = nextCode(factor);
      const wrong = (i: number) => String((Number(right) + 1 + i) % 1_000_000).padStart(6, '0');
      const responses = await Promise.all(
        Array.from({ length: 30 }, (_, i) => verifyMfa(url, mfaToken, wrong(i))),
      );
      for (const response of responses) expect(response.status).not.toBe(200);
      expect(await auditOf(user.id, 'mfa.failed')).toHaveLength(5);
    });

    it('dozens of wrong codes at once over many mfaTokens: at most five are checked, the rest 429', async () => {
      const { user, factor } = await enrolledUser();
      const tokens = await loginChallenges(url, user, 8);
      const right = nextCode(factor);
      const wrong = (i: number) => String((Number(right) + 1 + i) % 1_000_000).padStart(6, '0');
      // Five per mfaToken (its own limit), forty in all against one account (LOGIN_MAX_FAILURES = 5).
      const responses = await Promise.all(
        Array.from({ length: 40 }, (_, i) => verifyMfa(url, tokens[i % 8], wrong(i))),
      );
      const statuses = responses.map((response) => response.status);
      expect(statuses.filter((status) => status === 401).length).toBeLessThanOrEqual(5);
      expect(statuses.filter((status) => status !== 401 && status !== 429)).toEqual([]);
      expect((await auditOf(user.id, 'mfa.failed')).length).toBeLessThanOrEqual(5);
      // The account is locked now: the right password waits too.
      const locked = await request(url)
        .post('/api/auth/token/login')
        .send({ email: user.email, password: user.password });
      expectError(locked, 429, 'RATE_LIMITED');
    });

    it('mfa/verify hands out the device token, and a device token passes the account lock', async () => {
      const { user, factor } = await enrolledUser();
      const first = await verifyMfa(url, await loginChallenge(url, user, 'token'), nextCode(factor));
      expect(first.status).toBe(200);
      const deviceToken = (first.body as { deviceToken: string }).deviceToken;
      expect(deviceToken).toEqual(expect.any(String));
      expect(String(first.headers['set-cookie'])).toContain(`did=${deviceToken}`);
      // The owner's next login passes its password, then an attacker locks the account with wrong codes.
      const owners = await loginChallenge(url, user, 'token', { deviceToken });
      const attackers = await loginChallenge(url, user, 'token');
      for (let i = 0; i < 5; i += 1)
        expectError(await verifyMfa(url, attackers, '000000'), 401, 'MFA_INVALID');
      const locked = await loginChallenge(url, user, 'token', { deviceToken }).catch(() => undefined);
      expect(locked).toEqual(expect.any(String));
      // Without the device token the lock holds; with it (body or did cookie) the code counts on the device.
      expectError(await verifyMfa(url, owners, nextCode(factor)), 429, 'RATE_LIMITED');
      const passed = await verifyMfa(url, locked!, nextCode(factor), { deviceToken });
      expect(passed.status).toBe(200);
      expect(passed.body).toMatchObject({ deviceToken: expect.any(String) });
    });

    it('five wrong codes kill the mfaToken and lock the account, as wrong passwords do', async () => {
      const { user, factor } = await enrolledUser();
      const mfaToken = await loginChallenge(url, user, 'session');
      for (let i = 0; i < 5; i += 1)
        expectError(await verifyMfa(url, mfaToken, '000000'), 401, 'MFA_INVALID');
      // Dead: even the right code is refused now.
      expectError(await verifyMfa(url, mfaToken, nextCode(factor)), 401, 'MFA_INVALID');
      const failed = await auditOf(user.id, 'mfa.failed');
      expect(failed).toHaveLength(5);
      expect(failed[0].detail).toMatchObject({ during: 'login' });
      // Five consecutive failures of the account (LOGIN_MAX_FAILURES): the right password waits too.
      const locked = await request(url)
        .post('/api/auth/token/login')
        .send({ email: user.email, password: user.password });
      expectError(locked, 429, 'RATE_LIMITED');
      expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    });

    it('a correct password does not clear the failures of wrong codes before it', async () => {
      const { user, factor } = await enrolledUser();
      for (let round = 0; round < 2; round += 1) {
        const mfaToken = await loginChallenge(url, user, 'token');
        expectError(await verifyMfa(url, mfaToken, '000000'), 401, 'MFA_INVALID');
        expectError(await verifyMfa(url, mfaToken, '000001'), 401, 'MFA_INVALID');
      }
      const mfaToken = await loginChallenge(url, user, 'token');
      expectError(await verifyMfa(url, mfaToken, '000002'), 401, 'MFA_INVALID');
      expectError(await verifyMfa(url, mfaToken, nextCode(factor)), 429, 'RATE_LIMITED');
    });
  });

  describe('step-up', () => {
    it.each(['session', 'token'] as const)(
      'by %s: password change needs a code (403 without, 401 wrong), then works',
      async (method) => {
        const { user, factor } = await enrolledUser();
        const caller =
          method === 'session'
            ? await completedSessionLogin(user, factor)
            : await completedTokenLogin(user, factor);
        const newPassword = 'quartz-meadow-lantern-19';
        const change = (code?: string) =>
          caller
            .auth(request(url).post('/api/me/password'))
            .send({ currentPassword: user.password, newPassword, ...(code === undefined ? {} : { code }) });
        expectError(await change(), 403, 'MFA_REQUIRED');
        expectError(await change('999999'), 401, 'MFA_INVALID');
        expect((await change(nextCode(factor))).status).toBe(204);
        await loginChallenge(url, { email: user.email, password: newPassword }, 'token');
      },
    );

    it.each(['session', 'token'] as const)(
      'by %s: account deletion needs a code; a recovery code does too',
      async (method) => {
        const { user, factor } = await enrolledUser();
        const caller =
          method === 'session'
            ? await completedSessionLogin(user, factor)
            : await completedTokenLogin(user, factor);
        const remove = (code?: string) =>
          caller
            .auth(request(url).delete('/api/me'))
            .send({ password: user.password, ...(code === undefined ? {} : { code }) });
        expectError(await remove(), 403, 'MFA_REQUIRED');
        expectError(await remove('123456'), 401, 'MFA_INVALID');
        expect((await remove(factor.recoveryCodes[0])).status).toBe(204);
        expectError(
          await request(url)
            .post('/api/auth/token/login')
            .send({ email: user.email, password: user.password }),
          401,
          'INVALID_CREDENTIALS',
        );
      },
    );

    it('a user without a factor needs no code', async () => {
      const user = await registerUser(url);
      const caller = await tokenLogin(url, user);
      await caller
        .auth(request(url).post('/api/me/password'))
        .send({ currentPassword: user.password, newPassword: 'quartz-meadow-lantern-19' })
        .expect(204);
    });
  });

  describe('removing the factor', () => {
    it('the user removes it with password and code', async () => {
      const { user, factor } = await enrolledUser();
      const caller = await completedSessionLogin(user, factor);
      const remove = (body: object) => caller.auth(request(url).delete('/api/me/mfa/totp')).send(body);
      const wrongPassword = await remove({ password: 'not-the-password', code: nextCode(factor) });
      expectError(wrongPassword, 400, 'VALIDATION_FAILED');
      expect((wrongPassword.body as { details: { field: string }[] }).details[0].field).toBe('password');
      expectError(await remove({ password: user.password, code: '000000' }), 401, 'MFA_INVALID');
      await remove({ password: user.password, code: nextCode(factor) }).expect(204);
      expect((await me(caller)).user.mfaEnabled).toBe(false);
      expect(await auditOf(user.id, 'mfa.disabled')).toEqual([
        expect.objectContaining({ detail: { by: user.id } }),
      ]);
      // Plain logins again, and the old recovery codes are gone with the factor.
      await tokenLogin(url, user);
    });

    it('an admin removes it for a user who lost device and codes, and signs that user out everywhere', async () => {
      const { user, factor } = await enrolledUser();
      const session = await completedSessionLogin(user, factor);
      const tokens = await completedTokenLogin(user, factor);
      const caller = await admin();

      expectError(
        await tokens.auth(request(url).delete(`/api/admin/users/${user.id}/mfa`)),
        403,
        'FORBIDDEN',
      );
      expectError(
        await caller.auth(request(url).delete('/api/admin/users/00000000-0000-4000-8000-000000000000/mfa')),
        404,
        'NOT_FOUND',
      );
      await caller.auth(request(url).delete(`/api/admin/users/${user.id}/mfa`)).expect(204);

      expectError(await session.auth(request(url).get('/api/me')), 401, 'SESSION_INVALID');
      expectError(await tokens.auth(request(url).get('/api/me')), 401, 'TOKEN_REVOKED');
      const fresh = await tokenLogin(url, user);
      expect((await me(fresh)).user.mfaEnabled).toBe(false);
      const adminId = (await me(caller)).user.id;
      expect(await auditOf(user.id, 'mfa.disabled')).toEqual([
        expect.objectContaining({ detail: { by: adminId } }),
      ]);
      expect((await auditOf(user.id, 'sessions.revoked_all'))[0].detail).toMatchObject({ by: adminId });
    });
  });

  it('documents every second-factor route with its security scheme and its errors', async () => {
    const document = (await request(url).get('/docs-json').expect(200)).body as {
      paths: Record<string, Record<string, { security?: Record<string, unknown>[]; responses: object }>>;
    };
    const expectations: [string, string, string[], string[]][] = [
      ['/api/auth/mfa/verify', 'post', [], ['200', '401', '403', '429']],
      ['/api/me/mfa/totp', 'post', ['bearer', 'csrf', 'session'], ['200', '400', '401']],
      ['/api/me/mfa/totp/confirm', 'post', ['bearer', 'csrf', 'session'], ['200', '401']],
      ['/api/me/mfa/totp', 'delete', ['bearer', 'csrf', 'session'], ['204', '400', '401', '403']],
      ['/api/me/mfa/recovery-codes', 'post', ['bearer', 'csrf', 'session'], ['200', '401']],
      ['/api/admin/users/{id}/mfa', 'delete', ['bearer', 'csrf', 'session'], ['204', '401', '403', '404']],
      ['/api/me/password', 'post', ['bearer', 'csrf', 'session'], ['403', '401']],
    ];
    for (const [path, method, schemes, statuses] of expectations) {
      const operation = document.paths[path]?.[method];
      expect(operation).toBeDefined();
      expect((operation.security ?? []).flatMap((entry) => Object.keys(entry)).sort()).toEqual(schemes);
      expect(Object.keys(operation.responses)).toEqual(expect.arrayContaining(statuses));
    }
  });

  async function completedTokenLogin(user: RegisteredUser, factor: EnrolledFactor): Promise<Caller> {
    const verified = await verifyMfa(url, await loginChallenge(url, user, 'token'), nextCode(factor));
    expect(verified.status).toBe(200);
    const body = verified.body as { accessToken: string; refreshToken: string };
    return asBearer(body.accessToken, body.refreshToken);
  }

  async function completedSessionLogin(user: RegisteredUser, factor: EnrolledFactor): Promise<Caller> {
    const verified = await verifyMfa(url, await loginChallenge(url, user, 'session'), nextCode(factor));
    expect(verified.status).toBe(200);
    return asSession(sessionCookieOf(verified)!, (verified.body as { csrfToken: string }).csrfToken);
  }
});

describe('second factor: rotating MFA_ENCRYPTION_KEY', () => {
  let storage: TestStorage;

  beforeAll(async () => {
    storage = await createTestStorage();
  });

  afterAll(async () => {
    await storage?.drop();
  });

  it('keeps factors working across a rotation and re-seals them under the new key at start', async () => {
    const oldKey = randomBytes(32).toString('base64');
    const newKey = randomBytes(32).toString('hex');
    const first = await startApp({ ...storage.env, MFA_ENCRYPTION_KEY: oldKey });
    const user = await registerUser(first.url);
    const factor = await enrolSecondFactor(first.url, await tokenLogin(first.url, user), user.password);
    await first.close();

    const keyIds = async (running: RunningApp): Promise<string[]> => {
      const rows: { key_id: string }[] = await running.app
        .get(DataSource)
        .query('SELECT DISTINCT key_id FROM mfa_totp');
      return rows.map((row) => row.key_id);
    };

    // The new key current, the old one retired but still configured: the secret is re-sealed at start.
    const rotated = await startApp({
      ...storage.env,
      MFA_ENCRYPTION_KEY: newKey,
      MFA_PREVIOUS_ENCRYPTION_KEYS: oldKey,
    });
    const [resealed] = await keyIds(rotated);
    expect(resealed).toBe(keyIdOf(Buffer.from(newKey, 'hex')));
    const recovery = await verifyMfa(
      rotated.url,
      await loginChallenge(rotated.url, user, 'token'),
      factor.recoveryCodes[0],
    );
    expect(recovery.status).toBe(200);
    await rotated.close();

    // The old key dropped: the TOTP secret opens under the new key alone.
    const after = await startApp({ ...storage.env, MFA_ENCRYPTION_KEY: newKey });
    expect(await keyIds(after)).toEqual([resealed]);
    const code = totpAt(factor.secret, Date.now() + STEP_MS);
    expect((await verifyMfa(after.url, await loginChallenge(after.url, user, 'session'), code)).status).toBe(
      200,
    );
    await after.close();
  });
});
