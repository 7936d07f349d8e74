import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { Client } from 'pg';
import request from 'supertest';
import { registerUser } from './support/factories';
import { ensureBuilt, Instance, shareDatabase, SharedDatabase, spawnInstance } from './support/instances';
import { expectError, sessionLogin, tokenLogin } from './support/clients';
import { createTestStorage, TestStorage } from './support/test-app';

/** A bcrypt hash anywhere in a text: `$2b$04$` and 53 more characters. */
const BCRYPT_HASH = /\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}/;

interface LogLine {
  level: number;
  msg?: string;
  requestId?: string;
  code?: string;
  err?: Record<string, unknown>;
  req?: { method: string; url: string };
  res?: { statusCode: number };
}

/**
 * The service's own stdout, as an operator's log shipper would read it: one JSON object per line, the
 * request id of each request in its line, and no credential anywhere.
 */
describe('logging', () => {
  let storage: TestStorage;
  // The test process reaches the instance's database too (in embedded mode it serves it), to break a table.
  let shared: SharedDatabase;
  let instance: Instance;

  beforeAll(async () => {
    ensureBuilt();
    storage = await createTestStorage();
    shared = await shareDatabase(storage.env);
    instance = await spawnInstance({ ...shared.env, LOG_LEVEL: 'debug' });
  }, 120_000);

  afterAll(async () => {
    await instance?.stop();
    await shared?.close();
    await storage?.drop();
  });

  /** Runs statements on the instance's database from the test, as an operator's console would. */
  async function onDatabase(...statements: string[]): Promise<void> {
    const client = new Client({ connectionString: shared.env.DATABASE_URL });
    await client.connect();
    try {
      for (const statement of statements) await client.query(statement);
    } finally {
      await client.end();
    }
  }

  function lines(): LogLine[] {
    return instance
      .output()
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as LogLine);
  }

  it('writes one JSON line per request carrying the request id the client saw', async () => {
    const user = await registerUser(instance.url);
    await request(instance.url)
      .post('/api/auth/session/login')
      .set('X-Request-Id', 'trace-login-1')
      .send({ email: user.email, password: 'wrong-password-1' })
      .expect(401)
      .expect('X-Request-Id', 'trace-login-1');
    const generated = await request(instance.url)
      .get('/api/nowhere')
      .set('X-Request-Id', 'not sane\tat all')
      .expect(404);
    const id = generated.headers['x-request-id'];
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect((generated.body as { requestId: string }).requestId).toBe(id);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const logged = lines();
    expect(logged.find((line) => line.requestId === 'trace-login-1')).toMatchObject({
      req: { method: 'POST', url: '/api/auth/session/login' },
      res: { statusCode: 401 },
      code: 'INVALID_CREDENTIALS',
      msg: expect.stringMatching(/^POST \/api\/auth\/session\/login 401 INVALID_CREDENTIALS \d+ ms$/),
    });
    expect(logged.find((line) => line.requestId === id)).toMatchObject({
      res: { statusCode: 404 },
      code: 'NOT_FOUND',
    });
  });

  it('names the request id in one field, requestId, in every line', async () => {
    await request(instance.url).get('/health/live').set('X-Request-Id', 'trace-live-1').expect(200);
    await request(instance.url)
      .post('/api/auth/register')
      .set('X-Request-Id', 'trace-bad-json-1')
      .set('Content-Type', 'application/json')
      .send('{"email":')
      .expect(400);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const logged = lines();
    expect(logged.find((line) => line.requestId === 'trace-live-1')).toMatchObject({
      res: { statusCode: 200 },
    });
    expect(logged.find((line) => line.requestId === 'trace-bad-json-1')).toMatchObject({
      code: 'MALFORMED_JSON',
    });
    for (const line of logged) {
      expect(line).not.toHaveProperty('reqId');
      expect(line).not.toHaveProperty('req.id');
    }
  });

  it('writes readable single lines instead of JSON with LOG_PRETTY=true', async () => {
    const pretty = await spawnInstance({
      ...storage.env,
      DATA_DIR: `${storage.env.DATA_DIR}-pretty`,
      LOG_PRETTY: 'true',
      LOG_LEVEL: 'info',
    });
    try {
      await request(pretty.url)
        .post('/api/auth/session/login')
        .set('X-Request-Id', 'trace-pretty-1')
        .send({ email: 'nobody@example.com', password: 'wrong-password-3' })
        .expect(401);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const line = pretty
        .output()
        .split('\n')
        .find((text) => text.includes('trace-pretty-1'));
      expect(line).toMatch(
        /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: POST \/api\/auth\/session\/login 401 INVALID_CREDENTIALS \d+ ms /,
      );
      expect(() => JSON.parse(line!) as unknown).toThrow();
    } finally {
      await pretty.stop();
      rmSync(`${storage.env.DATA_DIR}-pretty`, { recursive: true, force: true });
    }
  });

  it('never writes a password, token, cookie or CSRF token', async () => {
    const user = await registerUser(instance.url);
    const session = await sessionLogin(instance.url, user);
    const token = await tokenLogin(instance.url, user);
    await session.auth(request(instance.url).get('/api/me')).expect(200);
    await token.auth(request(instance.url).get('/api/me')).expect(200);
    await request(instance.url)
      .post('/api/auth/token/refresh')
      .send({ refreshToken: token.refreshToken })
      .expect(200);
    await session
      .auth(request(instance.url).post('/api/me/password'))
      .send({ currentPassword: 'wrong-password-2', newPassword: 'quartz-meadow-falcon-91' })
      .expect(400);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const output = instance.output();
    expect(lines().length).toBeGreaterThan(5);
    const cookieValue = decodeURIComponent(session.cookie.split('=')[1]);
    for (const secret of [
      user.password,
      'wrong-password-2',
      'quartz-meadow-falcon-91',
      token.accessToken,
      token.refreshToken,
      cookieValue,
      cookieValue.slice(2, cookieValue.indexOf('.')),
      session.csrfToken,
    ]) {
      expect(output).not.toContain(secret);
    }
  });

  describe('a failed statement', () => {
    it('is logged with the request id but without its parameters: no new bcrypt hash, in detail or message', async () => {
      const user = await registerUser(instance.url);
      const session = await sessionLogin(instance.url, user);
      // pg puts values in an error's detail (as a unique violation's "Key (email)=(…)") and sometimes in
      // its message; the failing UPDATE's parameters hold the new hash.
      await onDatabase(
        `CREATE FUNCTION refuse_password_change() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           RAISE EXCEPTION 'refused "%"', NEW.password_hash USING DETAIL = 'Key (password_hash)=(' || NEW.password_hash || ')';
         END $$`,
        `CREATE TRIGGER refuse_password_change BEFORE UPDATE OF password_hash ON users
         FOR EACH ROW EXECUTE FUNCTION refuse_password_change()`,
      );
      try {
        const response = await session
          .auth(request(instance.url).post('/api/me/password'))
          .set('X-Request-Id', 'trace-failed-update')
          .send({ currentPassword: user.password, newPassword: 'quartz-meadow-falcon-92' });
        expectError(response, 500, 'INTERNAL_ERROR');
        expect(JSON.stringify(response.body)).not.toMatch(/refused|password_hash|UPDATE/);
      } finally {
        await onDatabase(
          'DROP TRIGGER refuse_password_change ON users',
          'DROP FUNCTION refuse_password_change()',
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      const failure = lines().find((line) => line.requestId === 'trace-failed-update' && line.err);
      expect(failure).toMatchObject({ msg: 'unhandled error', err: { code: 'P0001' } });
      expect(JSON.stringify(failure)).toContain('UPDATE');
      const output = instance.output();
      expect(output).not.toMatch(BCRYPT_HASH);
      expect(output).not.toContain('quartz-meadow-falcon-92');
      expect(output).not.toContain(user.password);
    });

    it("is logged without a refresh token's hash among its parameters", async () => {
      const user = await registerUser(instance.url);
      const token = await tokenLogin(instance.url, user);
      // A column gone from under the service: every statement naming it fails with its parameters attached.
      await onDatabase('ALTER TABLE refresh_tokens RENAME COLUMN token_hash TO token_hash_moved');
      try {
        const response = await request(instance.url)
          .post('/api/auth/token/refresh')
          .set('X-Request-Id', 'trace-failed-select')
          .send({ refreshToken: token.refreshToken });
        expectError(response, 500, 'INTERNAL_ERROR');
      } finally {
        await onDatabase('ALTER TABLE refresh_tokens RENAME COLUMN token_hash_moved TO token_hash');
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(lines().find((line) => line.requestId === 'trace-failed-select' && line.err)).toMatchObject({
        err: { code: '42703' },
      });
      const output = instance.output();
      expect(output).not.toContain(token.refreshToken);
      expect(output).not.toContain(createHash('sha256').update(token.refreshToken).digest('hex'));
    });
  });
});
