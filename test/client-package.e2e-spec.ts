import {
  AuthClientError,
  createAuthClient,
  type AuthClient,
  type AuthClientOptions,
  type ErrorCode,
  type RefreshTokenStorage,
  type SignedOutReason,
} from '@auth-service/client';
import { Clock } from '../src/common/clock';
import { cookieJarFetch, type CookieJarFetch } from './support/cookie-jar';
import { STRONG_PASSWORD, uniqueEmail } from './support/factories';
import { totpAt } from './support/mfa';
import { linkToken, mailEnv, startSmtpSink, type SmtpSink } from './support/smtp-sink';
import { createTestStorage, startApp, type RunningApp, type TestStorage } from './support/test-app';

/**
 * The client package (client/src, as the package's users get it) against the running service: every
 * wrapper, both methods, refresh and CSRF recovery counted at the service.
 */

const ADMIN = { email: 'client-package.admin@example.com', password: 'admin-cobalt-harbor-63' };
const NEW_PASSWORD = 'quartz-meadow-harbor-97';
const ACCESS_TTL_SECONDS = 60;

/** Seconds the service's clock runs ahead of the client's. */
let serviceAhead = 0;
class MovableClock extends Clock {
  override now(): number {
    return Date.now() + serviceAhead * 1000;
  }
}

/** Moves the clock of the whole process, client and service, `seconds` ahead. */
function advanceEveryClock(seconds: number): void {
  const real = Date.now.bind(Date);
  jest.spyOn(Date, 'now').mockImplementation(() => real() + seconds * 1000);
}

/** A refresh token kept in memory, as an app would keep it in its own storage; records every write. */
function memoryStorage(): RefreshTokenStorage & { writes: (string | null)[] } {
  let value: string | null = null;
  const writes: (string | null)[] = [];
  return {
    writes,
    get: () => value,
    set(next) {
      value = next;
      writes.push(next);
    },
  };
}

async function caught(promise: Promise<unknown>): Promise<AuthClientError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(AuthClientError);
  return error as AuthClientError;
}

async function expectCode(
  promise: Promise<unknown>,
  status: number,
  code: ErrorCode,
): Promise<AuthClientError> {
  const error = await caught(promise);
  expect({ status: error.status, code: error.code, requestId: error.requestId }).toEqual({
    status,
    code,
    requestId: expect.any(String),
  });
  return error;
}

describe('client package', () => {
  let storage: TestStorage;
  let sink: SmtpSink;
  let running: RunningApp;
  let admin: AuthClient;

  beforeAll(async () => {
    storage = await createTestStorage();
    sink = await startSmtpSink();
    running = await startApp(
      mailEnv(storage, sink, {
        ADMIN_EMAIL: ADMIN.email,
        ADMIN_PASSWORD: ADMIN.password,
        ACCESS_TOKEN_TTL: `${ACCESS_TTL_SECONDS}s`,
      }),
      [{ provide: Clock, useClass: MovableClock }],
    );
    admin = client('session');
    expect(await admin.login(ADMIN)).toMatchObject({ status: 'signed-in', user: { role: 'admin' } });
  }, 60_000);

  afterAll(async () => {
    await running?.close();
    await sink?.stop();
    await storage?.drop();
  }, 60_000);

  afterEach(() => {
    serviceAhead = 0;
    jest.restoreAllMocks();
  });

  function client(
    mode: 'session' | 'token',
    options: Partial<AuthClientOptions> = {},
    jar: CookieJarFetch = cookieJarFetch(),
  ): AuthClient {
    return createAuthClient({ baseUrl: running.url, mode, fetch: jar.fetch, ...options });
  }

  function signedOutReasons(auth: AuthClient): SignedOutReason[] {
    const reasons: SignedOutReason[] = [];
    auth.onSignedOut((reason) => reasons.push(reason));
    return reasons;
  }

  async function newUser(auth: AuthClient): Promise<{ id: string; email: string; password: string }> {
    const email = uniqueEmail('client');
    const user = await auth.register({ email, password: STRONG_PASSWORD, displayName: 'Client' });
    // Its verification mail is sent after the answer; waited for here, so later mails come after it.
    await sink.waitFor((mail) => mail.to === email);
    return { id: user.id, email, password: STRONG_PASSWORD };
  }

  /** How many refreshes the service made for a user, from its audit trail. */
  async function refreshesOf(userId: string): Promise<number> {
    const { data } = await admin.api.GET('/api/admin/audit', {
      params: { query: { userId, type: 'token.refreshed', limit: 100 } },
    });
    return data!.total;
  }

  /** The token of the link `action` had mailed to `email`; mails sent before it (registration's) are not it. */
  async function mailedToken(email: string, page: string, action: () => Promise<unknown>): Promise<string> {
    const before = sink.messages.length;
    await action();
    const mail = await sink.waitFor(
      (mail) =>
        sink.messages.indexOf(mail) >= before && mail.to === email && mail.text.includes(`${page}?token=`),
    );
    return linkToken(mail, page);
  }

  /** Refresh requests the service answered, replays in the grace window included (the audit counts rotations). */
  async function refreshRequests(): Promise<number> {
    const metrics = await (await fetch(`${running.url}/metrics`)).text();
    return metrics
      .split('\n')
      .filter((line) => /^http_request_duration_seconds_count\{/.test(line))
      .filter((line) => line.includes('method="POST"') && line.includes('route="/api/auth/token/refresh"'))
      .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
  }

  describe('session mode, with a cookie jar', () => {
    it('runs every account call through its wrapper', async () => {
      const auth = client('session');
      const changes: unknown[] = [];
      auth.onChange((user) => changes.push(user?.email ?? null));
      const reasons = signedOutReasons(auth);
      const user = await newUser(auth);

      expect(await auth.login(user)).toMatchObject({
        status: 'signed-in',
        user: { id: user.id, email: user.email },
      });
      expect(auth.user?.id).toBe(user.id);
      expect(changes).toEqual([user.email]);
      expect(await auth.me()).toMatchObject({
        user: { id: user.id },
        auth: { method: 'session', mfa: false },
      });

      let sent: unknown;
      const verification = await mailedToken(user.email, '/verify-email', async () => {
        sent = await auth.requestEmailVerification();
      });
      expect(sent).toBe('sent');
      await auth.verifyEmail({ token: verification });
      expect((await auth.me()).user.emailVerified).toBe(true);
      expect(await auth.requestEmailVerification()).toBe('already-verified');

      const elsewhere = client('session');
      await elsewhere.login(user);
      const signIns = await auth.listSignIns();
      expect(signIns.map((signIn) => signIn.current).sort()).toEqual([false, true]);
      await auth.revokeSignIn(signIns.find((signIn) => !signIn.current)!.id);
      expect(await auth.listSignIns()).toHaveLength(1);

      const newEmail = uniqueEmail('moved');
      await auth.verifyEmail({
        token: await mailedToken(newEmail, '/confirm-email', () =>
          auth.changeEmail({ newEmail, password: user.password }),
        ),
      });
      expect((await auth.me()).user.email).toBe(newEmail);

      await auth.changePassword({ currentPassword: user.password, newPassword: NEW_PASSWORD });
      // The session got a new id: unsafe calls keep working with it.
      expect(await auth.requestEmailVerification()).toBe('already-verified');
      await auth.logoutAll();
      expect(auth.user).toBeNull();
      expect(reasons).toEqual(['logout']);
      await expectCode(auth.me(), 401, 'AUTHENTICATION_REQUIRED');

      await auth.resetPassword({
        token: await mailedToken(newEmail, '/reset-password', () => auth.forgotPassword({ email: newEmail })),
        newPassword: STRONG_PASSWORD,
      });
      await auth.login({ email: newEmail, password: STRONG_PASSWORD });
      await auth.deleteAccount({ password: STRONG_PASSWORD });
      expect(auth.user).toBeNull();
      await expectCode(
        auth.login({ email: newEmail, password: STRONG_PASSWORD }),
        401,
        'INVALID_CREDENTIALS',
      );
      expect(changes.at(-1)).toBeNull();
    });

    it('throws the contract errors, typed by code', async () => {
      const auth = client('session');
      const user = await newUser(auth);
      await expectCode(auth.register({ email: user.email, password: STRONG_PASSWORD }), 409, 'EMAIL_TAKEN');
      const invalid = await expectCode(
        auth.register({ email: 'not-an-email', password: STRONG_PASSWORD }),
        400,
        'VALIDATION_FAILED',
      );
      expect(invalid.details?.map((detail) => detail.field)).toEqual(['email']);
      await expectCode(
        auth.login({ email: user.email, password: 'wrong-password-1' }),
        401,
        'INVALID_CREDENTIALS',
      );
      await expectCode(auth.listSignIns(), 401, 'AUTHENTICATION_REQUIRED');
      await expectCode(auth.verifyEmail({ token: 'x'.repeat(43) }), 400, 'LINK_INVALID');
      await auth.login(user);
      await expectCode(auth.revokeSignIn('00000000-0000-4000-8000-000000000000'), 404, 'NOT_FOUND');
      await expectCode(auth.api.GET('/api/admin/users').then(throwIfFailed), 403, 'FORBIDDEN');
    });

    it('fetches the CSRF token again, once, when the session it belonged to was replaced', async () => {
      const jar = cookieJarFetch();
      const tab = client('session', {}, jar);
      const user = await newUser(tab);
      await tab.login(user);
      // Another tab of the same browser signs in again: the cookie now names a session with another token.
      await client('session', {}, jar).login(user);
      jar.requests.length = 0;

      expect(await tab.requestEmailVerification()).toBe('sent');
      expect(jar.requests).toEqual([
        { method: 'POST', path: '/api/me/email/verification' },
        { method: 'GET', path: '/api/auth/session' },
        { method: 'POST', path: '/api/me/email/verification' },
      ]);
    });

    it('restores the session after a reload, and reports a revoked one as revoked', async () => {
      const jar = cookieJarFetch();
      const before = client('session', {}, jar);
      const user = await newUser(before);
      await before.login(user);
      const reloaded = client('session', {}, jar);
      expect((await reloaded.restore())?.id).toBe(user.id);
      const reasons = signedOutReasons(reloaded);

      await admin.api
        .POST('/api/admin/users/{id}/revoke', { params: { path: { id: user.id } } })
        .then(throwIfFailed);
      await expectCode(reloaded.listSignIns(), 401, 'SESSION_INVALID');
      expect(reasons).toEqual(['revoked']);
      expect(reloaded.user).toBeNull();
      expect(await client('session', {}, jar).restore()).toBeNull();
    });
  });

  describe('token mode, refresh token in a storage the app chose', () => {
    async function signedInTokenClient(options: Partial<AuthClientOptions> = {}) {
      const refreshToken = memoryStorage();
      const auth = client('token', { refreshToken, ...options });
      const user = await newUser(auth);
      expect(await auth.login(user)).toMatchObject({ status: 'signed-in' });
      return { auth, user, refreshToken };
    }

    it('keeps the refresh token in the storage and signs in with the device token it was given', async () => {
      const deviceToken = {
        value: null as string | null,
        get: () => deviceToken.value,
        set: (v: string | null) => (deviceToken.value = v),
      };
      const { auth, user, refreshToken } = await signedInTokenClient({ deviceTokenStorage: deviceToken });
      expect(refreshToken.writes).toEqual([expect.any(String)]);
      expect(deviceToken.value).toEqual(expect.any(String));
      expect(await auth.me()).toMatchObject({ auth: { method: 'token' } });
      expect(await auth.getAccessToken()).toEqual(expect.any(String));

      // A restart: a new client with the same storage refreshes with the stored token.
      const restarted = client('token', { refreshToken, deviceTokenStorage: deviceToken });
      expect((await restarted.restore())?.id).toBe(user.id);
      expect(refreshToken.writes).toHaveLength(2);
      await restarted.logout();
      expect(refreshToken.writes.at(-1)).toBeNull();
      expect(await client('token', { refreshToken }).restore()).toBeNull();
    });

    it('refreshes ahead of expiry', async () => {
      const { auth, user } = await signedInTokenClient();
      const before = await auth.getAccessToken();
      advanceEveryClock(ACCESS_TTL_SECONDS - 20);
      expect((await auth.me()).user.id).toBe(user.id);
      expect(await auth.getAccessToken()).not.toBe(before);
      expect(await refreshesOf(user.id)).toBe(1);
    });

    it('refreshes once on TOKEN_EXPIRED and retries the call', async () => {
      const { auth, user } = await signedInTokenClient();
      serviceAhead = ACCESS_TTL_SECONDS + 31;
      expect((await auth.me()).user.id).toBe(user.id);
      expect(await refreshesOf(user.id)).toBe(1);
    });

    it('makes one refresh for 20 concurrent calls with an expired token, whoever finds out', async () => {
      const { auth, user } = await signedInTokenClient();
      const requestsBefore = await refreshRequests();
      // The service says so: every call is answered TOKEN_EXPIRED before one refresh.
      serviceAhead = ACCESS_TTL_SECONDS + 31;
      const first = await Promise.all(Array.from({ length: 20 }, () => auth.me()));
      expect(first.every((me) => me.user.id === user.id)).toBe(true);
      expect(await refreshesOf(user.id)).toBe(1);
      // The client knows it: every call waits for one refresh ahead of it.
      advanceEveryClock(ACCESS_TTL_SECONDS + 1);
      const second = await Promise.all(Array.from({ length: 20 }, () => auth.listSignIns()));
      expect(second.every((signIns) => signIns.length === 1)).toBe(true);
      expect(await refreshesOf(user.id)).toBe(2);
      expect((await refreshRequests()) - requestsBefore).toBe(2);
    });

    it('gets a working token again after a password change revoked the one it had, and forgets it on logout-all', async () => {
      const { auth, user, refreshToken } = await signedInTokenClient();
      await auth.changePassword({ currentPassword: user.password, newPassword: NEW_PASSWORD });
      expect((await auth.me()).user.id).toBe(user.id);
      await auth.logoutAll();
      expect(refreshToken.writes.at(-1)).toBeNull();
    });

    it('signs out with "revoked" when an admin revokes the user', async () => {
      const { auth, user } = await signedInTokenClient();
      const reasons = signedOutReasons(auth);
      await admin.api
        .POST('/api/admin/users/{id}/revoke', { params: { path: { id: user.id } } })
        .then(throwIfFailed);
      await expectCode(auth.me(), 401, 'TOKEN_REVOKED');
      expect(reasons).toEqual(['revoked']);
      expect(auth.user).toBeNull();
      expect(await auth.getAccessToken()).toBeNull();
    });
  });

  describe('token mode, refresh token in the rt cookie', () => {
    it('restores after a reload through GET /api/auth/token/csrf, and logs out', async () => {
      const jar = cookieJarFetch();
      const tab = client('token', {}, jar);
      const user = await newUser(tab);
      await tab.login(user);
      const reloaded = client('token', {}, jar);
      jar.requests.length = 0;
      expect((await reloaded.restore())?.id).toBe(user.id);
      expect(jar.requests).toEqual([
        { method: 'GET', path: '/api/auth/token/csrf' },
        { method: 'POST', path: '/api/auth/token/refresh' },
      ]);
      expect((await reloaded.me()).auth.method).toBe('token');
      await reloaded.logout();
      expect(await client('token', {}, jar).restore()).toBeNull();
    });

    it('fetches the refresh cookie CSRF token again, once, when the cookie was replaced', async () => {
      const jar = cookieJarFetch();
      const tab = client('token', {}, jar);
      const user = await newUser(tab);
      await tab.login(user);
      await client('token', {}, jar).login(user);
      advanceEveryClock(ACCESS_TTL_SECONDS + 1);
      jar.requests.length = 0;

      expect((await tab.me()).user.id).toBe(user.id);
      expect(jar.requests).toEqual([
        { method: 'POST', path: '/api/auth/token/refresh' },
        { method: 'GET', path: '/api/auth/token/csrf' },
        { method: 'POST', path: '/api/auth/token/refresh' },
        { method: 'GET', path: '/api/me' },
      ]);
    });
  });

  describe('second factor', () => {
    it('signs in in two steps and manages the factor', async () => {
      const refreshToken = memoryStorage();
      const auth = client('token', { refreshToken });
      const user = await newUser(auth);
      await auth.login(user);
      const { secret, otpauthUrl } = await auth.enrolTotp({ password: user.password });
      expect(otpauthUrl).toMatch(/^otpauth:\/\/totp\//);
      const { recoveryCodes } = await auth.confirmTotp({ code: totpAt(secret, Date.now()) });
      expect(auth.user?.mfaEnabled).toBe(true);

      const next = client('token', { refreshToken: memoryStorage() });
      const challenge = await next.login(user);
      expect(challenge).toEqual({
        status: 'mfa-required',
        mfaToken: expect.any(String),
        methods: ['totp', 'recovery_code'],
      });
      expect(next.user).toBeNull();
      if (challenge.status !== 'mfa-required') throw new Error('expected a second step');
      await expectCode(next.verifyMfa({ mfaToken: challenge.mfaToken, code: '000000' }), 401, 'MFA_INVALID');
      expect(await next.verifyMfa({ mfaToken: challenge.mfaToken, code: recoveryCodes[0] })).toMatchObject({
        status: 'signed-in',
        user: { id: user.id, mfaEnabled: true },
      });
      expect((await next.me()).auth.mfa).toBe(true);

      await expectCode(next.deleteAccount({ password: user.password }), 403, 'MFA_REQUIRED');
      const renewed = await next.regenerateRecoveryCodes({ code: recoveryCodes[1] });
      expect(renewed.recoveryCodes).toHaveLength(10);
      await next.disableTotp({ password: user.password, code: renewed.recoveryCodes[0] });
      expect(next.user?.mfaEnabled).toBe(false);
    });

    it('lets an admin remove a factor through api', async () => {
      const auth = client('session');
      const user = await newUser(auth);
      await auth.login(user);
      const { secret } = await auth.enrolTotp({ password: user.password });
      await auth.confirmTotp({ code: totpAt(secret, Date.now()) });
      const reasons = signedOutReasons(auth);

      const { data: page } = await admin.api.GET('/api/admin/users', {
        params: { query: { email: user.email } },
      });
      expect(page?.items.map((item) => item.id)).toEqual([user.id]);
      const { data: promoted } = await admin.api.PATCH('/api/admin/users/{id}', {
        params: { path: { id: user.id } },
        body: { role: 'admin' },
      });
      expect(promoted?.user.role).toBe('admin');
      await admin.api
        .DELETE('/api/admin/users/{id}/mfa', { params: { path: { id: user.id } } })
        .then(throwIfFailed);
      await expectCode(auth.me(), 401, 'SESSION_INVALID');
      expect(reasons).toEqual(['revoked']);
      const { data: audit } = await admin.api.GET('/api/admin/audit', {
        params: { query: { userId: user.id } },
      });
      expect(audit?.items.map((item) => item.type)).toEqual(
        expect.arrayContaining(['mfa.enabled', 'mfa.disabled', 'role.changed']),
      );
    });
  });
});

/** `api` answers errors instead of throwing them: the error of a failed answer, thrown as the wrappers do. */
function throwIfFailed(answer: { error?: unknown; response: Response }): void {
  if (!answer.response.ok) throw AuthClientError.of(answer.response, answer.error);
}
