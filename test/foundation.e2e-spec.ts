import request from 'supertest';
import { expectError } from './support/clients';
import { registerUser, STRONG_PASSWORD, uniqueEmail } from './support/factories';
import { createTestStorage, RunningApp, startApp, TestStorage } from './support/test-app';

describe('foundation: register, errors, platform, operations', () => {
  let storage: TestStorage;
  let running: RunningApp;

  beforeAll(async () => {
    storage = await createTestStorage();
    running = await startApp({
      ...storage.env,
      ADMIN_EMAIL: 'Root@Example.com',
      ADMIN_PASSWORD: STRONG_PASSWORD,
      CORS_ORIGINS: 'https://app.example,https://admin.example',
    });
  });

  afterAll(async () => {
    await running.close();
    await storage.drop();
  });

  const api = () => request(running.url);

  describe('POST /api/auth/register', () => {
    it('creates a user with a normalised email and the user role, never returning a hash', async () => {
      const response = await api()
        .post('/api/auth/register')
        .send({ email: '  Ｍixed.Case@Example.COM ', password: STRONG_PASSWORD, displayName: 'Mixed' })
        .expect(201);
      expect(response.body.user).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        email: 'mixed.case@example.com',
        displayName: 'Mixed',
        role: 'user',
        emailVerified: false,
        mfaEnabled: false,
        createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
      });
      expect(JSON.stringify(response.body)).not.toMatch(/\$2[aby]\$/);
    });

    it('refuses an email that exists after normalisation with 409 EMAIL_TAKEN', async () => {
      const email = uniqueEmail();
      await registerUser(running.url, { email });
      const response = await api()
        .post('/api/auth/register')
        .send({ email: ` ${email.toUpperCase()} `, password: STRONG_PASSWORD })
        .expect(409);
      expectError(response, 409, 'EMAIL_TAKEN');
    });

    it('never lets a client set a role (unknown fields are refused)', async () => {
      const response = await api()
        .post('/api/auth/register')
        .send({ email: uniqueEmail(), password: STRONG_PASSWORD, role: 'admin' })
        .expect(400);
      expectError(response, 400, 'VALIDATION_FAILED');
      expect(response.body.details).toEqual([{ field: 'role', message: expect.any(String) }]);
    });

    it.each([
      ['a common password', { password: 'password123' }, 'password'],
      ['a short password', { password: 'Ab1!xyz' }, 'password'],
      ['a 129-character password', { password: 'q'.repeat(129) }, 'password'],
      ['a NUL in the password', { password: 'lantern\u0000orbit-cobalt' }, 'password'],
      ['a malformed email', { email: 'not-an-email' }, 'email'],
      ['an email that is not a string', { email: { $ne: null } }, 'email'],
    ])('refuses %s with VALIDATION_FAILED naming the field', async (_label, override, field) => {
      const response = await api()
        .post('/api/auth/register')
        .send({ email: uniqueEmail(), password: STRONG_PASSWORD, ...override })
        .expect(400);
      expectError(response, 400, 'VALIDATION_FAILED');
      expect(response.body.details).toEqual(expect.arrayContaining([expect.objectContaining({ field })]));
    });
  });

  describe('errors in one shape', () => {
    it('answers an unknown route with 404 NOT_FOUND', async () => {
      const response = await api().get('/api/nothing-here').expect(404);
      expectError(response, 404, 'NOT_FOUND');
    });

    it('answers an unsupported method on a known path with 404 NOT_FOUND', async () => {
      const response = await api().put('/api/auth/register').send({}).expect(404);
      expectError(response, 404, 'NOT_FOUND');
    });

    it('answers malformed JSON with 400 MALFORMED_JSON', async () => {
      const response = await api()
        .post('/api/auth/register')
        .set('Content-Type', 'application/json')
        .send('{"email": ')
        .expect(400);
      expectError(response, 400, 'MALFORMED_JSON');
    });

    it('answers a non-JSON body with 415 UNSUPPORTED_MEDIA_TYPE', async () => {
      const response = await api()
        .post('/api/auth/register')
        .set('Content-Type', 'application/x-www-form-urlencoded')
        .send('email=a@b.co&password=x')
        .expect(415);
      expectError(response, 415, 'UNSUPPORTED_MEDIA_TYPE');
    });

    it('answers a body over 16 KiB with 413 PAYLOAD_TOO_LARGE', async () => {
      const response = await api()
        .post('/api/auth/register')
        .send({ email: uniqueEmail(), password: STRONG_PASSWORD, displayName: 'x'.repeat(17 * 1024) })
        .expect(413);
      expectError(response, 413, 'PAYLOAD_TOO_LARGE');
    });

    it('echoes a sane X-Request-Id and replaces an insane one', async () => {
      const echoed = await api().get('/nowhere').set('X-Request-Id', 'client-req-123').expect(404);
      expect(echoed.headers['x-request-id']).toBe('client-req-123');
      expect(echoed.body.requestId).toBe('client-req-123');
      const replaced = await api().get('/nowhere').set('X-Request-Id', 'bad id with spaces\t').expect(404);
      expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(replaced.body.requestId).toBe(replaced.headers['x-request-id']);
    });
  });

  describe('platform', () => {
    it('allows CORS_ORIGINS with credentials, answers their preflights, and varies on Origin', async () => {
      const preflight = await api()
        .options('/api/me/password')
        .set('Origin', 'https://app.example')
        .set('Access-Control-Request-Method', 'POST')
        .set('Access-Control-Request-Headers', 'content-type,x-csrf-token');
      expect(preflight.status).toBe(204);
      expect(preflight.headers['access-control-allow-origin']).toBe('https://app.example');
      expect(preflight.headers['access-control-allow-credentials']).toBe('true');
      expect(preflight.headers['access-control-allow-headers']?.toLowerCase()).toContain('x-csrf-token');
      const allowed = await api().get('/health/live').set('Origin', 'https://admin.example').expect(200);
      expect(allowed.headers['access-control-allow-origin']).toBe('https://admin.example');
      expect(allowed.headers['vary']).toMatch(/Origin/);
      const foreign = await api().get('/health/live').set('Origin', 'https://evil.example').expect(200);
      expect(foreign.headers['access-control-allow-origin']).toBeUndefined();
      expect(foreign.headers['vary']).toMatch(/Origin/);
    });

    it('sends helmet headers and no-store on API responses', async () => {
      const response = await api().post('/api/auth/register').send({}).expect(400);
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.headers['x-powered-by']).toBeUndefined();
    });

    it('creates the admin from ADMIN_EMAIL at start', async () => {
      const response = await api()
        .post('/api/auth/register')
        .send({ email: 'root@example.com', password: STRONG_PASSWORD })
        .expect(409);
      expectError(response, 409, 'EMAIL_TAKEN');
    });
  });

  describe('operations', () => {
    it('reports liveness and readiness naming the components', async () => {
      await api().get('/health/live').expect(200, { status: 'ok' });
      const ready = await api().get('/health/ready').expect(200);
      expect(ready.body.info).toMatchObject({ database: { status: 'up' }, sessionStore: { status: 'up' } });
    });

    it('serves Prometheus metrics', async () => {
      const response = await api().get('/metrics').expect(200);
      expect(response.headers['content-type']).toMatch(/text\/plain/);
      expect(response.text).toContain('http_request_duration_seconds');
    });

    it('serves Swagger UI and an OpenAPI 3 document with both security schemes', async () => {
      await api().get('/docs').expect(200);
      const document = (await api().get('/docs-json').expect(200)).body;
      expect(document.openapi).toMatch(/^3\./);
      expect(Object.keys(document.components.securitySchemes).sort()).toEqual([
        'bearer',
        'csrf',
        'refreshCookie',
        'session',
      ]);
      const register = document.paths['/api/auth/register'].post;
      expect(Object.keys(register.responses)).toEqual(
        expect.arrayContaining(['201', '400', '409', '413', '415']),
      );
    });
  });
});
