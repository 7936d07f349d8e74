import { rmSync } from 'node:fs';
import request from 'supertest';
import { registerUser } from './support/factories';
import { ensureBuilt, Instance, spawnInstance } from './support/instances';
import { sessionLogin, tokenLogin } from './support/clients';
import { createTestStorage, TestStorage } from './support/test-app';

interface LogLine {
  level: number;
  msg?: string;
  requestId?: string;
  code?: string;
  req?: { method: string; url: string };
  res?: { statusCode: number };
}

/**
 * The service's own stdout, as an operator's log shipper would read it: one JSON object per line, the
 * request id of each request in its line, and no credential anywhere.
 */
describe('logging', () => {
  let storage: TestStorage;
  let instance: Instance;

  beforeAll(async () => {
    ensureBuilt();
    storage = await createTestStorage();
    instance = await spawnInstance({ ...storage.env, LOG_LEVEL: 'debug' });
  });

  afterAll(async () => {
    await instance?.stop();
    await storage?.drop();
  });

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
});
