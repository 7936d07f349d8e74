import request from 'supertest';
import {
  asBearer,
  asSession,
  Caller,
  expectError,
  sessionCookieOf,
  sessionLogin,
  tokenLogin,
} from './support/clients';
import { registerUser, RegisteredUser, uniqueEmail } from './support/factories';
import { EnrolledFactor, enrolSecondFactor, loginChallenge, totpAt, verifyMfa } from './support/mfa';
import { linkToken, mailEnv, SmtpSink, startSmtpSink } from './support/smtp-sink';
import { createTestStorage, RunningApp, startApp, TestStorage } from './support/test-app';

const NEW_PASSWORD = 'quartz-meadow-harbor-97';

/**
 * The second factor in the account's lifecycle by mail: a mailbox alone does not reset the password or move
 * the account of a user with a factor; the code is asked for before the link is used up. Over a real SMTP
 * server, as test/lifecycle.e2e-spec.ts.
 */
describe('second factor in the lifecycle by mail', () => {
  let storage: TestStorage;
  let sink: SmtpSink;
  let running: RunningApp;
  let url: string;

  beforeAll(async () => {
    storage = await createTestStorage();
    sink = await startSmtpSink();
    running = await startApp(mailEnv(storage, sink));
    url = running.url;
  });

  afterAll(async () => {
    await running?.close();
    await sink?.stop();
    await storage?.drop();
  });

  async function enrolledUser(): Promise<{ user: RegisteredUser; factor: EnrolledFactor }> {
    const user = await registerUser(url);
    const factor = await enrolSecondFactor(url, await tokenLogin(url, user), user.password);
    return { user, factor };
  }

  /** A code of the next step: the enrolment used the current one, and a step is accepted once. */
  const nextTotp = (factor: EnrolledFactor) => totpAt(factor.secret, Date.now() + 30_000);

  async function resetToken(email: string): Promise<string> {
    const before = sink.messages.length;
    expect((await request(url).post('/api/auth/password/forgot').send({ email })).status).toBe(202);
    const mail = await sink.waitFor(
      (candidate) =>
        candidate.to === email &&
        /reset-password/.test(candidate.text) &&
        sink.messages.indexOf(candidate) >= before,
    );
    return linkToken(mail, '/reset-password');
  }

  const reset = (token: string, code?: string) =>
    request(url)
      .post('/api/auth/password/reset')
      .send({ token, newPassword: NEW_PASSWORD, ...(code === undefined ? {} : { code }) });

  describe('password reset', () => {
    it('needs the code: 403 without, 401 wrong, and neither uses the link up; then it works', async () => {
      const { user, factor } = await enrolledUser();
      const token = await resetToken(user.email);
      expectError(await reset(token), 403, 'MFA_REQUIRED');
      expectError(await reset(token, '000000'), 401, 'MFA_INVALID');
      expect((await reset(token, nextTotp(factor))).status).toBe(204);
      // Used up now, and the new password is the one that passes (then the login asks for the code).
      expectError(await reset(token, factor.recoveryCodes[0]), 400, 'LINK_INVALID');
      await loginChallenge(url, { email: user.email, password: NEW_PASSWORD }, 'token');
    });

    it('takes a recovery code in place of a TOTP code', async () => {
      const { user, factor } = await enrolledUser();
      expect((await reset(await resetToken(user.email), factor.recoveryCodes[3])).status).toBe(204);
    });

    it('a user without a factor needs no code', async () => {
      const user = await registerUser(url);
      expect((await reset(await resetToken(user.email))).status).toBe(204);
    });

    it('counts wrong codes like login failures: past the limit the right code waits too', async () => {
      const { user, factor } = await enrolledUser();
      const token = await resetToken(user.email);
      const responses = await Promise.all(
        Array.from({ length: 20 }, (_, i) => reset(token, String(100000 + i))),
      );
      const statuses = responses.map((response) => response.status);
      expect(statuses.filter((status) => status === 401).length).toBeLessThanOrEqual(5);
      expect(statuses.filter((status) => status !== 401 && status !== 429)).toEqual([]);
      expectError(await reset(token, nextTotp(factor)), 429, 'RATE_LIMITED');
    });
  });

  describe('email change', () => {
    it.each(['session', 'token'] as const)(
      'by %s: needs the code (403 without, 401 wrong, nothing mailed), then mails the link',
      async (method) => {
        const { user, factor } = await enrolledUser();
        // Signed in through the second step, with a recovery code (the enrolment used this step's TOTP code).
        const completed = await verifyMfa(
          url,
          await loginChallenge(url, user, method),
          factor.recoveryCodes[9],
        );
        expect(completed.status).toBe(200);
        const body = completed.body as { csrfToken: string; accessToken: string; refreshToken: string };
        const caller: Caller =
          method === 'session'
            ? asSession(sessionCookieOf(completed)!, body.csrfToken)
            : asBearer(body.accessToken, body.refreshToken);
        const newEmail = uniqueEmail();
        const change = (code?: string) =>
          caller
            .auth(request(url).post('/api/me/email'))
            .send({ newEmail, password: user.password, ...(code === undefined ? {} : { code }) });
        expectError(await change(), 403, 'MFA_REQUIRED');
        expectError(await change('000000'), 401, 'MFA_INVALID');
        expect(sink.to(newEmail)).toEqual([]);
        expect((await change(factor.recoveryCodes[0])).status).toBe(202);
        const confirm = await sink.waitFor((mail) => mail.to === newEmail);
        expect(linkToken(confirm, '/confirm-email')).toEqual(expect.any(String));
      },
    );

    it('a user without a factor needs no code', async () => {
      const user = await registerUser(url);
      const session = await sessionLogin(url, user);
      const newEmail = uniqueEmail();
      const asked = await session
        .auth(request(url).post('/api/me/email'))
        .send({ newEmail, password: user.password });
      expect(asked.status).toBe(202);
      await sink.waitFor((mail) => mail.to === newEmail);
    });
  });
});
