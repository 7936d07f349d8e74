import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { simpleParser } from 'mailparser';
import request, { Response } from 'supertest';
import { DataSource } from 'typeorm';
import { expectError, sessionCookieOf, sessionLogin, sleep, tokenLogin, refresh } from './support/clients';
import { registerUser, uniqueEmail } from './support/factories';
import {
  linkToken,
  ReceivedMail,
  SmtpSink,
  startSmtpSink,
  MAIL_FRONTEND,
  mailEnv as sinkEnv,
} from './support/smtp-sink';
import { createTestStorage, Env, RunningApp, startApp, TestStorage } from './support/test-app';

const FRONTEND = MAIL_FRONTEND;
const NEW_PASSWORD = 'quartz-meadow-harbor-97';
const ADMIN = { email: 'admin.lifecycle@example.com', password: 'admin-lantern-orbit-55' };

/** The lifecycle specs' service: mail to `sink`, and an admin to look at the audit with. */
function mailEnv(storage: TestStorage, sink: SmtpSink, extra: Env = {}): Env {
  return sinkEnv(storage, sink, { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, ...extra });
}

const forgot = (url: string, email: string) => request(url).post('/api/auth/password/forgot').send({ email });
const resetWith = (url: string, token: string, newPassword = NEW_PASSWORD) =>
  request(url).post('/api/auth/password/reset').send({ token, newPassword });
const verifyWith = (url: string, token: string) =>
  request(url).post('/api/auth/email/verify').send({ token });

async function auditTypes(url: string, userId: string): Promise<string[]> {
  const admin = await tokenLogin(url, ADMIN);
  const response = await admin.auth(request(url).get(`/api/admin/audit?userId=${userId}&limit=100`));
  expect(response.status).toBe(200);
  return (response.body as { items: { type: string }[] }).items.map((item) => item.type);
}

describe('account lifecycle by mail', () => {
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

  const resetMail = (email: string, after = 0) =>
    sink.waitFor(
      (mail) => mail.to === email && /reset-password/.test(mail.text) && sink.messages.indexOf(mail) >= after,
    );

  describe('password reset', () => {
    it('mails a link with text and HTML parts; using it revokes every sign-in and sets the password', async () => {
      const user = await registerUser(url);
      const session = await sessionLogin(url, user);
      const bearer = await tokenLogin(url, user);

      const asked = await forgot(url, user.email);
      expect(asked.status).toBe(202);
      const mail = await resetMail(user.email);
      expect(mail.subject).toBe('Reset your password');
      expect(mail.text).toContain(`${FRONTEND}/reset-password?token=`);
      expect(mail.html).toContain(`${FRONTEND}/reset-password?token=`);
      expect(mail.raw).toMatch(/Content-Type: multipart\/alternative/);
      const token = linkToken(mail, '/reset-password');
      expect(Buffer.from(token, 'base64url')).toHaveLength(32);

      expect((await resetWith(url, token)).status).toBe(204);

      expectError(await session.auth(request(url).get('/api/me')), 401, 'SESSION_INVALID');
      expectError(await bearer.auth(request(url).get('/api/me')), 401, 'TOKEN_REVOKED');
      expectError(await refresh(url, bearer.refreshToken), 401, 'REFRESH_TOKEN_INVALID');
      expectError(
        await request(url).post('/api/auth/token/login').send({ email: user.email, password: user.password }),
        401,
        'INVALID_CREDENTIALS',
      );
      const again = await sessionLogin(url, { email: user.email, password: NEW_PASSWORD });
      const me = await again.auth(request(url).get('/api/me'));
      // The link reached the address, so the address is proven.
      expect((me.body as { user: { emailVerified: boolean } }).user.emailVerified).toBe(true);
      expect(await auditTypes(url, user.id)).toEqual(
        expect.arrayContaining(['password.reset_requested', 'password.reset']),
      );
    });

    it('applies the password policy before using the token up', async () => {
      const user = await registerUser(url);
      await forgot(url, user.email).expect(202);
      const token = linkToken(await resetMail(user.email), '/reset-password');
      expectError(await resetWith(url, token, 'password'), 400, 'VALIDATION_FAILED');
      expect((await resetWith(url, token)).status).toBe(204);
    });

    it('lifts the account lock', async () => {
      const user = await registerUser(url);
      for (let i = 0; i < 5; i += 1) {
        await request(url)
          .post('/api/auth/session/login')
          .send({ email: user.email, password: `wrong-${i}-guess` });
      }
      const locked = await request(url)
        .post('/api/auth/session/login')
        .send({ email: user.email, password: user.password });
      expectError(locked, 429, 'RATE_LIMITED');
      await forgot(url, user.email).expect(202);
      expect((await resetWith(url, linkToken(await resetMail(user.email), '/reset-password'))).status).toBe(
        204,
      );
      await sessionLogin(url, { email: user.email, password: NEW_PASSWORD });
    });

    it('answers alike whether or not the account exists, and mails only an existing one', async () => {
      const user = await registerUser(url);
      const nobody = uniqueEmail('nobody');
      const known = await forgot(url, user.email);
      const unknown = await forgot(url, nobody);
      const shape = (response: Response) => {
        // Only the date and the request id may differ between two answers.
        const headers = { ...(response.headers as Record<string, string>) };
        delete headers.date;
        delete headers['x-request-id'];
        return { status: response.status, body: response.body as unknown, text: response.text, headers };
      };
      expect(shape(unknown)).toEqual(shape(known));
      expect(known.status).toBe(202);
      await resetMail(user.email);
      // Mail is sent in the order it was queued; give the unknown address's (absent) mail time as well.
      await forgot(url, user.email).expect(202);
      await sink.waitFor((mail) => mail.to === user.email && sink.to(user.email).length === 2);
      expect(sink.to(nobody)).toHaveLength(0);
      // The unknown address's request is dropped (resolved beside the known one's, so perhaps just after it).
      const kept = () =>
        running.app
          .get(DataSource)
          .query<unknown[]>('SELECT 1 FROM mail_outbox WHERE recipient = $1', [nobody]);
      for (let i = 0; i < 100 && (await kept()).length > 0; i += 1) await sleep(50);
      expect(await kept()).toHaveLength(0);
      expectError(await forgot(url, 'not-an-address'), 400, 'VALIDATION_FAILED');
      expectError(await forgot(url, `a\u0007${nobody}`), 400, 'VALIDATION_FAILED');
    });

    it('refuses forged, malformed, reused and superseded tokens with LINK_INVALID', async () => {
      expectError(await resetWith(url, randomBytes(32).toString('base64url')), 400, 'LINK_INVALID');
      expectError(await resetWith(url, 'short'), 400, 'LINK_INVALID');
      expectError(await verifyWith(url, randomBytes(32).toString('base64url')), 400, 'LINK_INVALID');

      const user = await registerUser(url);
      await forgot(url, user.email).expect(202);
      const first = linkToken(await resetMail(user.email), '/reset-password');
      const count = sink.messages.length;
      await forgot(url, user.email).expect(202);
      const second = linkToken(await resetMail(user.email, count), '/reset-password');
      expect(second).not.toBe(first);
      expectError(await resetWith(url, first), 400, 'LINK_INVALID');
      expect((await resetWith(url, second)).status).toBe(204);
      expectError(await resetWith(url, second, 'another-fine-passphrase-1'), 400, 'LINK_INVALID');
      // A reset token is not a verification token, and the other way round.
      const verification = linkToken(
        await sink.waitFor((mail) => mail.to === user.email && /verify-email/.test(mail.text)),
        '/verify-email',
      );
      expectError(await resetWith(url, verification), 400, 'LINK_INVALID');
    });

    it('lets exactly one of many parallel uses of one token through', async () => {
      const user = await registerUser(url);
      await forgot(url, user.email).expect(202);
      const token = linkToken(await resetMail(user.email), '/reset-password');
      const responses = await Promise.all(
        Array.from({ length: 20 }, (_, i) => resetWith(url, token, `parallel-passphrase-${i}-xyz`)),
      );
      const statuses = responses.map((response) => response.status).sort();
      expect(statuses.filter((status) => status === 204)).toHaveLength(1);
      for (const response of responses.filter((r) => r.status !== 204))
        expectError(response, 400, 'LINK_INVALID');
    });
  });

  describe('verification', () => {
    it('mails a link at registration; resending voids the first link; using it verifies', async () => {
      const user = await registerUser(url);
      const caller = await tokenLogin(url, user);
      const me = async () =>
        ((await caller.auth(request(url).get('/api/me'))).body as { user: { emailVerified: boolean } }).user;
      expect((await me()).emailVerified).toBe(false);
      const first = linkToken(
        await sink.waitFor((mail) => mail.to === user.email && /verify-email/.test(mail.text)),
        '/verify-email',
      );
      const count = sink.messages.length;
      expect((await caller.auth(request(url).post('/api/me/email/verification'))).status).toBe(202);
      const second = linkToken(
        await sink.waitFor(
          (mail) =>
            mail.to === user.email && /verify-email/.test(mail.text) && sink.messages.indexOf(mail) >= count,
        ),
        '/verify-email',
      );
      expectError(await verifyWith(url, first), 400, 'LINK_INVALID');
      expect((await verifyWith(url, second)).status).toBe(204);
      expect((await me()).emailVerified).toBe(true);
      const resent = await caller.auth(request(url).post('/api/me/email/verification'));
      expect(resent.status).toBe(204);
      expect(await auditTypes(url, user.id)).toContain('email.verified');
    });

    it('takes parallel uses of one link once', async () => {
      const user = await registerUser(url);
      const token = linkToken(
        await sink.waitFor((mail) => mail.to === user.email && /verify-email/.test(mail.text)),
        '/verify-email',
      );
      const statuses = (await Promise.all(Array.from({ length: 20 }, () => verifyWith(url, token)))).map(
        (response) => response.status,
      );
      expect(statuses.filter((status) => status === 204)).toHaveLength(1);
      expect(statuses.filter((status) => status === 400)).toHaveLength(19);
    });
  });

  describe('email change', () => {
    it('checks the password and the new address, then changes on the link to the new address; sign-ins stay', async () => {
      const user = await registerUser(url);
      const other = await registerUser(url);
      const session = await sessionLogin(url, user);
      const bearer = await tokenLogin(url, user);
      const newEmail = uniqueEmail('moved');

      const wrong = await session
        .auth(request(url).post('/api/me/email'))
        .send({ newEmail, password: 'not-it-at-all' });
      expectError(wrong, 400, 'VALIDATION_FAILED');
      expect((wrong.body as { details: { field: string }[] }).details[0]?.field).toBe('password');
      expectError(
        await session
          .auth(request(url).post('/api/me/email'))
          .send({ newEmail: other.email.toUpperCase(), password: user.password }),
        409,
        'EMAIL_TAKEN',
      );
      const asked = await session
        .auth(request(url).post('/api/me/email'))
        .send({ newEmail, password: user.password });
      expect(asked.status).toBe(202);

      const confirm = await sink.waitFor((mail) => mail.to === newEmail);
      const notice = await sink.waitFor(
        (mail) => mail.to === user.email && /about to change/.test(mail.subject),
      );
      expect(notice.text).toContain(newEmail);
      expect(notice.text).not.toMatch(/token=/);
      expect(notice.html).not.toMatch(/token=/);
      const token = linkToken(confirm, '/confirm-email');
      expect(confirm.text).toContain(`${FRONTEND}/confirm-email?token=`);

      expect((await verifyWith(url, token)).status).toBe(204);
      const me = (await session.auth(request(url).get('/api/me'))).body as {
        user: { email: string; emailVerified: boolean };
      };
      expect(me.user).toMatchObject({ email: newEmail, emailVerified: true });
      expect((await bearer.auth(request(url).get('/api/me'))).status).toBe(200);
      await sessionLogin(url, { email: newEmail, password: user.password });
      expectError(
        await request(url)
          .post('/api/auth/session/login')
          .send({ email: user.email, password: user.password }),
        401,
        'INVALID_CREDENTIALS',
      );
      expect(await auditTypes(url, user.id)).toEqual(
        expect.arrayContaining(['email.change_requested', 'email.changed']),
      );
    });

    it('gives one address to one of two accounts racing for it, and a 409 (never a 500) to the other', async () => {
      const target = uniqueEmail('contested');
      const racers = await Promise.all([registerUser(url), registerUser(url)]);
      for (const racer of racers) {
        const caller = await tokenLogin(url, racer);
        await caller
          .auth(request(url).post('/api/me/email'))
          .send({ newEmail: target, password: racer.password })
          .expect(202);
      }
      await sink.waitFor(() => sink.to(target).length === 2);
      const tokens = sink.to(target).map((mail) => linkToken(mail, '/confirm-email'));
      const responses = await Promise.all(tokens.map((token) => verifyWith(url, token)));
      const statuses = responses.map((response) => response.status).sort();
      expect(statuses).toEqual([204, 409]);
      expectError(
        responses.find((response) => response.status === 409)!,
        409,
        'EMAIL_TAKEN',
      );
    });
  });

  it('counts mail in /metrics', async () => {
    const metrics = (await request(url).get('/metrics')).text;
    expect(metrics).toMatch(/mail_queued_total\{template="password-reset"\} [1-9]/);
    expect(metrics).toMatch(/mail_sent_total\{template="verify-email"\} [1-9]/);
    expect(metrics).toMatch(/mail_outbox_waiting \d/);
    expect(metrics).toMatch(/mail_outbox_oldest_waiting_seconds \d/);
  });

  it('describes every new route in the OpenAPI document', async () => {
    const paths = (
      (await request(url).get('/docs-json')).body as {
        paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, unknown> }>>;
      }
    ).paths;
    expect(paths['/api/auth/password/forgot']?.post?.responses).toHaveProperty('202');
    expect(paths['/api/auth/password/reset']?.post?.responses).toHaveProperty('400');
    expect(paths['/api/auth/email/verify']?.post?.responses).toHaveProperty('409');
    expect(paths['/api/me/email/verification']?.post?.security).toEqual(
      expect.arrayContaining([{ session: [], csrf: [] }, { bearer: [] }]),
    );
    expect(paths['/api/me/email']?.post?.responses).toHaveProperty('409');
  });

  describe('while the SMTP server is down', () => {
    it('answers 202 and delivers once the server is back, once', async () => {
      const user = await registerUser(url);
      await sink.waitFor((mail) => mail.to === user.email);
      await sink.stop();
      try {
        expect((await forgot(url, user.email)).status).toBe(202);
        // Attempts fail and are retried with back-off meanwhile.
        for (let i = 0; i < 100; i += 1) {
          const metrics = (await request(url).get('/metrics')).text;
          if (/mail_send_failures_total\{template="password-reset"\} [1-9]/.test(metrics)) break;
          await sleep(100);
        }
      } finally {
        await sink.start();
      }
      await resetMail(user.email);
      await sleep(1000);
      expect(sink.to(user.email).filter((mail) => /reset-password/.test(mail.text))).toHaveLength(1);
    });
  });
});

describe('account lifecycle: short-lived links, required verification, limits', () => {
  let storage: TestStorage;
  let sink: SmtpSink;
  let running: RunningApp;
  let url: string;

  beforeAll(async () => {
    storage = await createTestStorage();
    sink = await startSmtpSink();
    running = await startApp(
      mailEnv(storage, sink, {
        PASSWORD_RESET_TTL: '1s',
        EMAIL_VERIFY_TTL: '2s',
        REQUIRE_VERIFIED_EMAIL: 'true',
        MAIL_IP_RATE_LIMIT: '1000',
        MAIL_ADDRESS_RATE_LIMIT: '2',
      }),
    );
    url = running.url;
  });

  afterAll(async () => {
    await running?.close();
    await sink?.stop();
    await storage?.drop();
  });

  it('refuses a login with the right password to an unverified account, issuing nothing', async () => {
    const user = await registerUser(url);
    for (const path of ['/api/auth/session/login', '/api/auth/token/login']) {
      const right = await request(url).post(path).send({ email: user.email, password: user.password });
      expectError(right, 403, 'EMAIL_NOT_VERIFIED');
      expect(sessionCookieOf(right)).toBeUndefined();
      expect(right.body).not.toHaveProperty('accessToken');
      expectError(
        await request(url).post(path).send({ email: user.email, password: 'wrong-password-here' }),
        401,
        'INVALID_CREDENTIALS',
      );
    }
    const token = linkToken(await sink.waitFor((mail) => mail.to === user.email), '/verify-email');
    expect((await verifyWith(url, token)).status).toBe(204);
    await sessionLogin(url, user);
    await tokenLogin(url, user);
  });

  it('refuses expired links', async () => {
    const user = await registerUser(url);
    const verification = linkToken(await sink.waitFor((mail) => mail.to === user.email), '/verify-email');
    await forgot(url, user.email).expect(202);
    const reset = linkToken(
      await sink.waitFor((mail) => mail.to === user.email && /reset-password/.test(mail.text)),
      '/reset-password',
    );
    await sleep(2500);
    expectError(await resetWith(url, reset), 400, 'LINK_INVALID');
    expectError(await verifyWith(url, verification), 400, 'LINK_INVALID');
  });

  it('limits mails per address: forgot stays 202 but sends no more; a resend gets 429', async () => {
    const user = await registerUser(url);
    for (let i = 0; i < 4; i += 1) expect((await forgot(url, user.email)).status).toBe(202);
    await sink.waitFor(
      (mail) =>
        mail.to === user.email && sink.to(user.email).filter((m) => /reset/.test(m.text)).length === 2,
    );
    await sleep(500);
    expect(sink.to(user.email).filter((mail) => /reset-password/.test(mail.text))).toHaveLength(2);

    const caller = await (async () => {
      // Unverified accounts cannot log in here; verify through the registration mail first.
      const token = linkToken(
        await sink.waitFor((mail) => mail.to === user.email && /verify-email/.test(mail.text)),
        '/verify-email',
      );
      await verifyWith(url, token);
      return tokenLogin(url, { email: user.email, password: user.password });
    })();
    const newEmail = uniqueEmail('limited');
    for (let i = 0; i < 2; i += 1) {
      await caller
        .auth(request(url).post('/api/me/email'))
        .send({ newEmail, password: user.password })
        .expect(202);
    }
    const third = await caller
      .auth(request(url).post('/api/me/email'))
      .send({ newEmail, password: user.password });
    expectError(third, 429, 'RATE_LIMITED');
    expect(Number(third.headers['retry-after'])).toBeGreaterThan(0);
  });
});

describe('account lifecycle without MAIL_URL', () => {
  let storage: TestStorage;
  let running: RunningApp;

  beforeAll(async () => {
    storage = await createTestStorage();
    running = await startApp({ ...storage.env, MAIL_POLL_INTERVAL_MS: '50' });
  });

  afterAll(async () => {
    await running?.close();
    await storage?.drop();
  });

  it('writes each mail as an .eml file under DATA_DIR/mail/, with both parts and a working link', async () => {
    const user = await registerUser(running.url);
    const directory = join(storage.env.DATA_DIR!, 'mail');
    let files: string[] = [];
    for (let i = 0; i < 100 && files.length === 0; i += 1) {
      await sleep(100);
      try {
        files = readdirSync(directory).filter((name) => name.endsWith('.eml'));
      } catch {
        files = [];
      }
    }
    expect(files).toHaveLength(1);
    const parsed = await simpleParser(readFileSync(join(directory, String(files[0]))));
    const to = Array.isArray(parsed.to) ? parsed.to[0] : parsed.to;
    expect(to?.value[0]?.address).toBe(user.email);
    expect(parsed.html).toContain('/verify-email?token=');
    const mail = { text: parsed.text ?? '', subject: parsed.subject ?? '' } as ReceivedMail;
    // FRONTEND_URL defaults to the service's own URL (PUBLIC_URL, else HOST:PORT).
    expect(mail.text).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/verify-email\?token=/m);
    expect((await verifyWith(running.url, linkToken(mail, '/verify-email'))).status).toBe(204);
  });
});

describe('account lifecycle: the limiter store cannot be reached', () => {
  let storage: TestStorage;
  let sink: SmtpSink;

  beforeAll(async () => {
    storage = await createTestStorage();
    sink = await startSmtpSink();
  });

  afterAll(async () => {
    await sink?.stop();
    await storage?.drop();
  });

  it('answers forgot with 503 while Redis is down, and sends nothing', async () => {
    // Nothing listens on port 1: the limiter's Redis is down from the start.
    const running = await startApp(mailEnv(storage, sink, { REDIS_URL: 'redis://127.0.0.1:1' }));
    try {
      expectError(await forgot(running.url, ADMIN.email), 503, 'SERVICE_UNAVAILABLE');
      await sleep(500);
      expect(sink.to(ADMIN.email)).toHaveLength(0);
    } finally {
      await running.close();
    }
  });

  it('answers forgot and a verification resend with 503 while the database store is gone', async () => {
    const running = await startApp(mailEnv(storage, sink, { REDIS_URL: undefined }));
    const setStore = (sql: string) => running.app.get(DataSource).query(sql);
    try {
      const user = await registerUser(running.url);
      const caller = await tokenLogin(running.url, user);
      await setStore('ALTER TABLE rate_limits RENAME TO rate_limits_away');
      try {
        expectError(await forgot(running.url, user.email), 503, 'SERVICE_UNAVAILABLE');
        expectError(
          await caller.auth(request(running.url).post('/api/me/email/verification')),
          503,
          'SERVICE_UNAVAILABLE',
        );
      } finally {
        await setStore('ALTER TABLE rate_limits_away RENAME TO rate_limits');
      }
      expect((await forgot(running.url, user.email)).status).toBe(202);
      expect((await caller.auth(request(running.url).post('/api/me/email/verification'))).status).toBe(202);
    } finally {
      await running.close();
    }
  });
});
