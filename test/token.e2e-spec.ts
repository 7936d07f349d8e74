import { createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject, verify } from 'node:crypto';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { Clock } from '../src/common/clock';
import { loadConfig } from '../src/config/load-config';
import { rotateKeys } from '../src/token/rotate-keys';
import { UsersService } from '../src/users/users.service';
import { registerUser, RegisteredUser } from './support/factories';
import { createTestStorage, Env, RunningApp, startApp, TestStorage } from './support/test-app';
import { b64, decodePart, forge } from './support/tokens';

jest.setTimeout(60_000);

const ISSUER = 'https://auth.test.example';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const nowSeconds = () => Math.floor(Date.now() / 1000);

interface TokenBody {
  tokenType: string;
  accessToken: string;
  expiresIn: number;
  refreshToken?: string;
  refreshExpiresIn: number;
  csrfToken?: string;
  user: { id: string; email: string };
}

async function login(
  url: string,
  user: RegisteredUser,
  extra: Record<string, unknown> = {},
): Promise<TokenBody> {
  const response = await request(url)
    .post('/api/auth/token/login')
    .send({ email: user.email, password: user.password, ...extra })
    .expect(200);
  return response.body as TokenBody;
}

function refresh(url: string, refreshToken: string) {
  return request(url).post('/api/auth/token/refresh').send({ refreshToken });
}

/** The bearer-only route of the contract; a 204 proves the token was accepted (and ends its family). */
function logout(url: string, accessToken: string, body: Record<string, unknown> = {}) {
  return request(url).post('/api/auth/token/logout').set('Authorization', `Bearer ${accessToken}`).send(body);
}

async function expectRejected(url: string, authorization: string, code: string): Promise<void> {
  const response = await request(url)
    .post('/api/auth/token/logout')
    .set('Authorization', authorization)
    .send({});
  expect({ status: response.status, code: response.body.code }).toEqual({ status: 401, code });
  expect(response.headers['www-authenticate']).toMatch(/^Bearer/);
}

function liveTokens(app: RunningApp, familyId: string): Promise<{ count: string }[]> {
  return app.app
    .get(DataSource)
    .query('SELECT count(*)::text AS count FROM refresh_tokens WHERE family_id = $1 AND used_at IS NULL', [
      familyId,
    ]);
}

describe('token authentication with configured ES256 keys', () => {
  let storage: TestStorage;
  let running: RunningApp;
  const signing = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  let kid: string;

  beforeAll(async () => {
    storage = await createTestStorage();
    running = await startApp({
      ...storage.env,
      JWT_ISSUER: ISSUER,
      JWT_PRIVATE_KEY: signing.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    });
    const jwks = await request(running.url).get('/.well-known/jwks.json').expect(200);
    kid = (jwks.body as { keys: { kid: string }[] }).keys[0].kid;
  }, 60_000);

  afterAll(async () => {
    await running.close();
    await storage.drop();
  }, 60_000);

  /** A fresh login's claims, to build forged tokens that would pass every check but the one under test. */
  async function liveClaims(): Promise<{ body: TokenBody; claims: Record<string, unknown> }> {
    const body = await login(running.url, await registerUser(running.url));
    return { body, claims: decodePart(body.accessToken, 1) };
  }

  it('logs in with the contract shape and an ES256 at+jwt carrying the contract claims', async () => {
    const user = await registerUser(running.url);
    const body = await login(running.url, user);
    expect(body).toEqual({
      tokenType: 'Bearer',
      accessToken: expect.any(String),
      expiresIn: expect.any(Number),
      refreshToken: expect.stringMatching(/^[A-Za-z0-9_-]{43,}$/),
      refreshExpiresIn: 7 * 24 * 3600,
      user: expect.objectContaining({ id: user.id, email: user.email, role: 'user' }),
      // The contract's device token for clients without cookies (limits.e2e-spec.ts tests what it does).
      deviceToken: expect.stringMatching(/^[0-9a-f-]{36}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/),
    });
    expect(body.expiresIn).toBe(900);
    expect(decodePart(body.accessToken, 0)).toEqual({ alg: 'ES256', typ: 'at+jwt', kid });
    const claims = decodePart(body.accessToken, 1);
    expect(claims).toEqual({
      iss: ISSUER,
      aud: 'api',
      sub: user.id,
      role: 'user',
      sid: expect.stringMatching(/^[0-9a-f-]{36}$/),
      jti: expect.any(String),
      amr: ['pwd'],
      iat: expect.any(Number),
      exp: expect.any(Number),
    });
    expect((claims.exp as number) - (claims.iat as number)).toBe(900);
    await logout(running.url, body.accessToken).expect(204);
  });

  it('refuses a wrong password with INVALID_CREDENTIALS', async () => {
    const user = await registerUser(running.url);
    const response = await request(running.url)
      .post('/api/auth/token/login')
      .send({ email: user.email, password: 'not-the-password-1' })
      .expect(401);
    expect(response.body.code).toBe('INVALID_CREDENTIALS');
  });

  it('publishes a JWKS whose key verifies the access token', async () => {
    const { body } = await liveClaims();
    const jwks = await request(running.url).get('/.well-known/jwks.json').expect(200);
    const keys = (jwks.body as { keys: Record<string, string>[] }).keys;
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', kid, alg: 'ES256', use: 'sig' });
    expect(keys[0]).not.toHaveProperty('d');
    const publicKey = createPublicKey({ key: keys[0], format: 'jwk' });
    const [head, payload, signature] = body.accessToken.split('.') as [string, string, string];
    expect(
      verify(
        'sha256',
        Buffer.from(`${head}.${payload}`),
        { key: publicKey, dsaEncoding: 'ieee-p1363' },
        Buffer.from(signature, 'base64url'),
      ),
    ).toBe(true);
  });

  it('asks for credentials with AUTHENTICATION_REQUIRED and a Bearer challenge', async () => {
    const response = await request(running.url).post('/api/auth/token/logout').send({}).expect(401);
    expect(response.body.code).toBe('AUTHENTICATION_REQUIRED');
    expect(response.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  it('accepts a token forged with the real key and correct claims (the forging helper is sound)', async () => {
    const { claims } = await liveClaims();
    const token = forge('ES256', signing.privateKey, { typ: 'at+jwt', kid }, claims);
    await logout(running.url, token).expect(204);
  });

  describe('refuses tampered and foreign tokens with TOKEN_INVALID', () => {
    const publicPem = signing.publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const publicJwk = JSON.stringify({
      ...signing.publicKey.export({ format: 'jwk' }),
      kid,
      alg: 'ES256',
      use: 'sig',
    });

    const cases: [string, (token: string, claims: Record<string, unknown>) => string][] = [
      [
        'a payload edited under the old signature',
        (token, claims) => {
          const [head, , signature] = token.split('.');
          return `${head}.${b64({ ...claims, role: 'admin' })}.${signature}`;
        },
      ],
      ['a stripped signature', (token) => `${token.split('.').slice(0, 2).join('.')}.`],
      ['a truncated signature', (token) => token.slice(0, -6)],
      ['two segments only', (token) => token.split('.').slice(0, 2).join('.')],
      ...['none', 'None', 'NONE', 'nOnE'].map(
        (alg): [string, (token: string, claims: Record<string, unknown>) => string] => [
          `alg ${alg}`,
          (_token, claims) => `${b64({ alg, typ: 'at+jwt', kid })}.${b64(claims)}.`,
        ],
      ),
      [
        'alg none with a signature kept',
        (token, claims) =>
          `${b64({ alg: 'none', typ: 'at+jwt', kid })}.${b64(claims)}.${token.split('.')[2]}`,
      ],
      [
        'HS256 signed with the public key PEM',
        (_token, claims) => forge('HS256', publicPem, { typ: 'at+jwt', kid }, claims),
      ],
      [
        'HS256 signed with the public key JWK',
        (_token, claims) => forge('HS256', publicJwk, { typ: 'at+jwt', kid }, claims),
      ],
      [
        'another key under the right kid',
        (_token, claims) => forge('ES256', attacker.privateKey, { typ: 'at+jwt', kid }, claims),
      ],
      [
        'kid ../../x',
        (_token, claims) => forge('ES256', attacker.privateKey, { typ: 'at+jwt', kid: '../../x' }, claims),
      ],
      [
        "kid ' OR 1=1 --",
        (_token, claims) =>
          forge('ES256', attacker.privateKey, { typ: 'at+jwt', kid: "' OR 1=1 --" }, claims),
      ],
      ['no kid', (_token, claims) => forge('ES256', signing.privateKey, { typ: 'at+jwt' }, claims)],
      [
        'a jku header naming the attacker key',
        (_token, claims) =>
          forge(
            'ES256',
            attacker.privateKey,
            { typ: 'at+jwt', kid: 'attacker', jku: 'https://evil.example/jwks.json' },
            claims,
          ),
      ],
      [
        'a jwk header carrying the attacker key',
        (_token, claims) =>
          forge(
            'ES256',
            attacker.privateKey,
            { typ: 'at+jwt', kid, jwk: attacker.publicKey.export({ format: 'jwk' }) },
            claims,
          ),
      ],
      [
        'an x5u header',
        (_token, claims) =>
          forge(
            'ES256',
            attacker.privateKey,
            { typ: 'at+jwt', kid: 'x', x5u: 'https://evil.example/c.pem' },
            claims,
          ),
      ],
      [
        'RS256 under the right kid',
        (_token, claims) =>
          forge(
            'RS256',
            generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
            { typ: 'at+jwt', kid },
            claims,
          ),
      ],
      [
        'EdDSA under the right kid',
        (_token, claims) =>
          forge('EdDSA', generateKeyPairSync('ed25519').privateKey, { typ: 'at+jwt', kid }, claims),
      ],
      [
        'nbf in the future',
        (_token, claims) =>
          forge('ES256', signing.privateKey, { typ: 'at+jwt', kid }, { ...claims, nbf: nowSeconds() + 600 }),
      ],
      [
        'iat in the future',
        (_token, claims) =>
          forge(
            'ES256',
            signing.privateKey,
            { typ: 'at+jwt', kid },
            { ...claims, iat: nowSeconds() + 600, exp: nowSeconds() + 1200 },
          ),
      ],
      [
        'a wrong issuer',
        (_token, claims) =>
          forge(
            'ES256',
            signing.privateKey,
            { typ: 'at+jwt', kid },
            { ...claims, iss: 'https://evil.example' },
          ),
      ],
      [
        'a wrong audience',
        (_token, claims) =>
          forge('ES256', signing.privateKey, { typ: 'at+jwt', kid }, { ...claims, aud: 'other' }),
      ],
      ['typ JWT', (_token, claims) => forge('ES256', signing.privateKey, { typ: 'JWT', kid }, claims)],
      ['no typ', (_token, claims) => forge('ES256', signing.privateKey, { kid }, claims)],
      [
        'no exp',
        (_token, claims) =>
          forge('ES256', signing.privateKey, { typ: 'at+jwt', kid }, { ...claims, exp: undefined }),
      ],
      [
        'a sub that is not a uuid',
        (_token, claims) =>
          forge('ES256', signing.privateKey, { typ: 'at+jwt', kid }, { ...claims, sub: "1' OR '1'='1" }),
      ],
      [
        'an expired token with a wrong issuer',
        (_token, claims) =>
          forge(
            'ES256',
            signing.privateKey,
            { typ: 'at+jwt', kid },
            { ...claims, iss: 'https://evil.example', iat: nowSeconds() - 2000, exp: nowSeconds() - 1000 },
          ),
      ],
    ];

    it.each(cases)('%s', async (_label, build) => {
      const { body, claims } = await liveClaims();
      await expectRejected(running.url, `Bearer ${build(body.accessToken, claims)}`, 'TOKEN_INVALID');
      await logout(running.url, body.accessToken).expect(204);
    });

    it('refuses a refresh token used as a bearer token', async () => {
      const { body } = await liveClaims();
      await expectRejected(running.url, `Bearer ${body.refreshToken}`, 'TOKEN_INVALID');
    });

    it.each([
      'Bearer',
      'Bearer ',
      'Basic dXNlcjpwYXNz',
      'Bearer a.b.c',
      'Bearer e30.e30.e30',
      'Bearer W10.W10.W10',
      'Bearer bnVsbA.bnVsbA.AA',
      `Bearer ${'a'.repeat(6000)}.b.c`,
      'Bearer ....',
      'Bearer %00%ff',
      'Bearer eyJhbGciOiJFUzI1NiJ9.@@@.x',
    ])('never answers a malformed header (%s) with a 500', async (header) => {
      const response = await request(running.url)
        .post('/api/auth/token/logout')
        .set('Authorization', header)
        .send({});
      expect(response.status).toBe(401);
      expect(['TOKEN_INVALID', 'AUTHENTICATION_REQUIRED']).toContain(response.body.code);
      expect(response.headers['www-authenticate']).toMatch(/^Bearer/);
    });
  });

  it('says TOKEN_EXPIRED for a correctly signed token past exp', async () => {
    const { claims } = await liveClaims();
    const token = forge(
      'ES256',
      signing.privateKey,
      { typ: 'at+jwt', kid },
      // Past exp and the 30 s leeway, with the contract's lifetime (a longer one is TOKEN_INVALID).
      { ...claims, iat: nowSeconds() - 960, exp: nowSeconds() - 60 },
    );
    await expectRejected(running.url, `Bearer ${token}`, 'TOKEN_EXPIRED');
  });

  it('says TOKEN_INVALID for a correctly signed token whose exp is ten years after its iat', async () => {
    const { body, claims } = await liveClaims();
    const iat = nowSeconds();
    const token = forge(
      'ES256',
      signing.privateKey,
      { typ: 'at+jwt', kid },
      { ...claims, iat, exp: iat + 10 * 365 * 24 * 3600 },
    );
    await expectRejected(running.url, `Bearer ${token}`, 'TOKEN_INVALID');
    // The same claims with the contract's lifetime pass: only the lifetime was wrong.
    const fair = forge(
      'ES256',
      signing.privateKey,
      { typ: 'at+jwt', kid },
      { ...claims, iat, exp: iat + 900 },
    );
    await logout(running.url, fair).expect(204);
    await expectRejected(running.url, `Bearer ${body.accessToken}`, 'TOKEN_REVOKED');
  });

  it('answers expiresIn of exactly ACCESS_TOKEN_TTL to every login and refresh, whatever the millisecond', async () => {
    const user = await registerUser(running.url);
    const answers: TokenBody[] = [];
    for (let i = 0; i < 15; i += 1) {
      const body = await login(running.url, user);
      answers.push(body);
      let refreshToken = body.refreshToken!;
      for (let j = 0; j < 2; j += 1) {
        const refreshed = (await refresh(running.url, refreshToken).expect(200)).body as TokenBody;
        answers.push(refreshed);
        refreshToken = refreshed.refreshToken!;
      }
      // Spread the requests over the second, so some are answered in its second half.
      await sleep(37);
    }
    // A replay inside the grace window is the same answer as the first time, expiresIn included.
    const last = await login(running.url, user);
    answers.push((await refresh(running.url, last.refreshToken!).expect(200)).body as TokenBody);
    answers.push((await refresh(running.url, last.refreshToken!).expect(200)).body as TokenBody);
    expect(answers.map((answer) => answer.expiresIn)).toEqual(answers.map(() => 900));
    for (const answer of answers) {
      const claims = decodePart<{ iat: number; exp: number }>(answer.accessToken, 1);
      expect(claims.exp - claims.iat).toBe(900);
    }
  });

  it('rotates the refresh token, and the old one replays the same answer inside the grace window', async () => {
    const { body } = await liveClaims();
    const first = await refresh(running.url, body.refreshToken!).expect(200);
    expect(first.body.refreshToken).not.toBe(body.refreshToken);
    expect(first.body.accessToken).not.toBe(body.accessToken);
    const again = await refresh(running.url, body.refreshToken!).expect(200);
    expect(again.body.accessToken).toBe(first.body.accessToken);
    expect(again.body.refreshToken).toBe(first.body.refreshToken);
    await refresh(running.url, first.body.refreshToken as string).expect(200);
  });

  it('answers twenty parallel refreshes of one token identically and leaves one live token', async () => {
    const { body, claims } = await liveClaims();
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => refresh(running.url, body.refreshToken!)),
    );
    expect(responses.map((response) => response.status)).toEqual(Array(20).fill(200));
    expect(new Set(responses.map((response) => response.body.refreshToken as string)).size).toBe(1);
    expect(new Set(responses.map((response) => response.body.accessToken as string)).size).toBe(1);
    expect(await liveTokens(running, claims.sid as string)).toEqual([{ count: '1' }]);
  });

  it('refuses a rotated token inside the grace window once its answer is no longer live, and kills the family', async () => {
    const { body } = await liveClaims();
    const b = await refresh(running.url, body.refreshToken!).expect(200);
    const c = await refresh(running.url, b.body.refreshToken as string).expect(200);
    // B's answer (C) is still the live token: B replays it.
    const again = await refresh(running.url, b.body.refreshToken as string).expect(200);
    expect(again.body.refreshToken).toBe(c.body.refreshToken);
    // A's answer (B) is not: A within the window is reuse, and the whole family dies with its access tokens.
    const reuse = await refresh(running.url, body.refreshToken!).expect(401);
    expect(reuse.body.code).toBe('REFRESH_TOKEN_REUSED');
    expect((await refresh(running.url, c.body.refreshToken as string).expect(401)).body.code).toBe(
      'REFRESH_TOKEN_INVALID',
    );
    expect((await refresh(running.url, b.body.refreshToken as string).expect(401)).body.code).toBe(
      'REFRESH_TOKEN_INVALID',
    );
    await expectRejected(running.url, `Bearer ${c.body.accessToken as string}`, 'TOKEN_REVOKED');
  });

  it('revokes the family and the access token at logout', async () => {
    const { body } = await liveClaims();
    await logout(running.url, body.accessToken, { refreshToken: body.refreshToken }).expect(204);
    const response = await refresh(running.url, body.refreshToken!).expect(401);
    expect(response.body.code).toBe('REFRESH_TOKEN_INVALID');
    await expectRejected(running.url, `Bearer ${body.accessToken}`, 'TOKEN_REVOKED');
  });

  it('refuses unknown refresh tokens with REFRESH_TOKEN_INVALID', async () => {
    for (const token of ['x', 'A'.repeat(43), '']) {
      const response = await refresh(running.url, token).expect(401);
      expect(response.body.code).toBe('REFRESH_TOKEN_INVALID');
    }
    const missing = await request(running.url).post('/api/auth/token/refresh').send({}).expect(401);
    expect(missing.body.code).toBe('REFRESH_TOKEN_INVALID');
  });

  it("revokes every access token of a user when the user's revocation stamp moves, but not one minted after", async () => {
    const user = await registerUser(running.url);
    const before = await login(running.url, user);
    await running.app.get(UsersService).revokeAll(user.id);
    await expectRejected(running.url, `Bearer ${before.accessToken}`, 'TOKEN_REVOKED');
    const after = await login(running.url, user);
    await logout(running.url, after.accessToken).expect(204);
  });

  it('revokes a token whose user is gone', async () => {
    const user = await registerUser(running.url);
    const body = await login(running.url, user);
    await running.app
      .get(UsersService)
      .transaction((manager) => running.app.get(UsersService).delete(user.id, manager));
    await expectRejected(running.url, `Bearer ${body.accessToken}`, 'TOKEN_REVOKED');
  });

  describe('refresh token in a cookie', () => {
    async function cookieLogin() {
      const user = await registerUser(running.url);
      const response = await request(running.url)
        .post('/api/auth/token/login')
        .send({ email: user.email, password: user.password, refreshTokenInCookie: true })
        .expect(200);
      const setCookie = ([] as string[]).concat(response.headers['set-cookie'] ?? []);
      const cookie = setCookie.find((line) => line.startsWith('rt='))!;
      return { body: response.body as TokenBody, cookie, pair: cookie.split(';')[0] };
    }

    it('sets an HttpOnly SameSite=Strict rt cookie on the token path and returns a CSRF token instead', async () => {
      const { body, cookie } = await cookieLogin();
      expect(body.refreshToken).toBeUndefined();
      expect(body.csrfToken).toEqual(expect.any(String));
      expect(cookie).toMatch(/HttpOnly/i);
      expect(cookie).toMatch(/SameSite=Strict/i);
      expect(cookie).toMatch(/Path=\/api\/auth\/token/);
      expect(cookie).toMatch(/Max-Age=\d+/);
      expect(cookie).not.toMatch(/Secure/i);
    });

    it('refreshes from the cookie only with the CSRF token and a trusted origin, returning the same CSRF token', async () => {
      const { body, pair } = await cookieLogin();
      const noToken = await request(running.url)
        .post('/api/auth/token/refresh')
        .set('Cookie', pair)
        .send({})
        .expect(403);
      expect(noToken.body.code).toBe('CSRF_FAILED');
      await request(running.url)
        .post('/api/auth/token/refresh')
        .set('Cookie', pair)
        .set('X-CSRF-Token', 'wrong')
        .send({})
        .expect(403);
      await request(running.url)
        .post('/api/auth/token/refresh')
        .set('Cookie', pair)
        .set('X-CSRF-Token', body.csrfToken!)
        .set('Origin', 'https://evil.example')
        .send({})
        .expect(403);
      const ok = await request(running.url)
        .post('/api/auth/token/refresh')
        .set('Cookie', pair)
        .set('X-CSRF-Token', body.csrfToken!)
        .send({})
        .expect(200);
      expect(ok.body.csrfToken).toBe(body.csrfToken);
      expect(ok.body.refreshToken).toBeUndefined();
      const next = ([] as string[])
        .concat(ok.headers['set-cookie'] ?? [])
        .find((line) => line.startsWith('rt='))!;
      expect(next.split(';')[0]).not.toBe(pair);

      const out = await request(running.url)
        .post('/api/auth/token/logout')
        .set('Authorization', `Bearer ${ok.body.accessToken as string}`)
        .set('Cookie', next.split(';')[0])
        .set('X-CSRF-Token', body.csrfToken!)
        .send({})
        .expect(204);
      expect(([] as string[]).concat(out.headers['set-cookie'] ?? []).join()).toMatch(/rt=;/);
      await request(running.url)
        .post('/api/auth/token/refresh')
        .set('Cookie', next.split(';')[0])
        .set('X-CSRF-Token', body.csrfToken!)
        .send({})
        .expect(401);
    });

    it('refuses a cookie-borne logout without the CSRF token', async () => {
      const { body, pair } = await cookieLogin();
      const response = await request(running.url)
        .post('/api/auth/token/logout')
        .set('Authorization', `Bearer ${body.accessToken}`)
        .set('Cookie', pair)
        .send({})
        .expect(403);
      expect(response.body.code).toBe('CSRF_FAILED');
    });
  });

  it('documents the token routes in OpenAPI with the bearer scheme on logout', async () => {
    const response = await request(running.url).get('/docs-json').expect(200);
    const paths = response.body.paths as Record<string, Record<string, { security?: unknown[] }>>;
    expect(paths['/api/auth/token/login']?.post).toBeDefined();
    expect(paths['/api/auth/token/refresh']?.post).toBeDefined();
    expect(paths['/api/auth/token/logout']?.post?.security).toEqual([
      { bearer: [] },
      { bearer: [], refreshCookie: [], csrf: [] },
    ]);
    expect(paths['/.well-known/jwks.json']?.get).toBeDefined();
  });
});

describe('token lifetimes and reuse detection', () => {
  let storage: TestStorage;
  let running: RunningApp;

  beforeAll(async () => {
    storage = await createTestStorage();
    running = await startApp({
      ...storage.env,
      ACCESS_TOKEN_TTL: '1s',
      REFRESH_REUSE_GRACE: '1s',
      REFRESH_TOKEN_TTL: '4s',
      REFRESH_IDLE_TTL: '2s',
    });
  }, 60_000);

  afterAll(async () => {
    await running.close();
    await storage.drop();
  }, 60_000);

  it('kills the family when a rotated token comes back after the grace window', async () => {
    const user = await registerUser(running.url);
    const body = await login(running.url, user);
    const rotated = await refresh(running.url, body.refreshToken!).expect(200);
    await sleep(1300);
    const reuse = await refresh(running.url, body.refreshToken!).expect(401);
    expect(reuse.body.code).toBe('REFRESH_TOKEN_REUSED');
    const next = await refresh(running.url, rotated.body.refreshToken as string).expect(401);
    expect(next.body.code).toBe('REFRESH_TOKEN_INVALID');
    const events: unknown[] = await running.app
      .get(DataSource)
      .query("SELECT 1 FROM audit_events WHERE type = 'token.reuse_detected' AND user_id = $1", [user.id]);
    expect(events).toHaveLength(1);
    const boxes: unknown[] = await running.app
      .get(DataSource)
      .query('SELECT 1 FROM refresh_families WHERE user_id = $1 AND replay_box IS NOT NULL', [user.id]);
    expect(boxes).toHaveLength(0);
  });

  it('enforces the idle lifetime and the absolute lifetime', async () => {
    const user = await registerUser(running.url);
    const idle = await login(running.url, user);
    const absolute = await login(running.url, user);
    let current = absolute.refreshToken!;
    for (let step = 0; step < 3; step += 1) {
      await sleep(1400);
      if (step < 2) {
        const response = await refresh(running.url, current).expect(200);
        current = response.body.refreshToken as string;
      }
    }
    await sleep(200);
    // 4.4 s after login: the idle family expired after 2 s; the kept-alive one reached its 4 s absolute end.
    expect((await refresh(running.url, idle.refreshToken!).expect(401)).body.code).toBe(
      'REFRESH_TOKEN_INVALID',
    );
    expect((await refresh(running.url, current).expect(401)).body.code).toBe('REFRESH_TOKEN_INVALID');
  });
});

describe('access token expiry, on a clock the spec moves', () => {
  let storage: TestStorage;
  let running: RunningApp;
  /** Seconds the service's Clock runs ahead of the real one. */
  let ahead = 0;

  class MovableClock extends Clock {
    override now(): number {
      return Date.now() + ahead * 1000;
    }
  }

  beforeAll(async () => {
    storage = await createTestStorage();
    running = await startApp(storage.env, [{ provide: Clock, useClass: MovableClock }]);
  }, 60_000);

  afterAll(async () => {
    await running.close();
    await storage.drop();
  }, 60_000);

  it('accepts a token up to 30 s past exp, then says TOKEN_EXPIRED, cached or not', async () => {
    ahead = 0;
    const body = await login(running.url, await registerUser(running.url));
    const me = () => request(running.url).get('/api/me').set('Authorization', `Bearer ${body.accessToken}`);
    await me().expect(200);
    const { exp } = decodePart<{ exp: number }>(body.accessToken, 1);
    // Two seconds inside the leeway, against whatever second the real clock has reached meanwhile.
    ahead = exp + 28 - nowSeconds();
    await me().expect(200);
    ahead = exp + 31 - nowSeconds();
    const expired = await me().expect(401);
    expect(expired.body.code).toBe('TOKEN_EXPIRED');
    expect(expired.headers['www-authenticate']).toBe('Bearer realm="api", error="invalid_token"');
    // Never presented before: takes the whole verification, and is expired there as well.
    ahead = 0;
    const fresh = await login(running.url, await registerUser(running.url));
    ahead = decodePart<{ exp: number }>(fresh.accessToken, 1).exp + 31 - nowSeconds();
    await expectRejected(running.url, `Bearer ${fresh.accessToken}`, 'TOKEN_EXPIRED');
  });
});

describe('two applications in one process', () => {
  let storage: TestStorage;
  let secondStorage: TestStorage | undefined;
  const running: RunningApp[] = [];
  const keyOf = () =>
    generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ format: 'pem', type: 'pkcs8' })
      .toString();

  beforeAll(async () => {
    storage = await createTestStorage();
    // Embedded PGlite belongs to one server at a time: the second application gets storage of its own.
    secondStorage = storage.mode === 'embedded' ? await createTestStorage() : undefined;
  }, 60_000);

  afterAll(async () => {
    for (const app of running.reverse()) await app.close();
    await secondStorage?.drop();
    await storage?.drop();
  }, 60_000);

  it("each checks tokens with its own keys and caches, whichever registered passport's jwt strategy last", async () => {
    const first = await startApp({ ...storage.env, JWT_PRIVATE_KEY: keyOf() });
    running.push(first);
    // Logged in before the second application exists: the local strategy is still passport's by name.
    const mine = await login(first.url, await registerUser(first.url));
    const second = await startApp({ ...(secondStorage ?? storage).env, JWT_PRIVATE_KEY: keyOf() });
    running.push(second);
    const theirs = await login(second.url, await registerUser(second.url));

    await request(first.url).get('/api/me').set('Authorization', `Bearer ${mine.accessToken}`).expect(200);
    await request(second.url).get('/api/me').set('Authorization', `Bearer ${theirs.accessToken}`).expect(200);
    await expectRejected(first.url, `Bearer ${theirs.accessToken}`, 'TOKEN_INVALID');
    await expectRejected(second.url, `Bearer ${mine.accessToken}`, 'TOKEN_INVALID');
  });
});

describe('development keys kept in the database', () => {
  let storage: TestStorage;

  beforeAll(async () => {
    storage = await createTestStorage();
  }, 60_000);

  afterAll(async () => {
    await storage.drop();
  }, 60_000);

  it('keeps tokens valid across a restart and across a key rotation', async () => {
    const env: Env = { ...storage.env };
    const first = await startApp(env);
    const user = await registerUser(first.url);
    const before = await login(first.url, user);
    const kid1 = decodePart(before.accessToken, 0).kid;
    await first.close();

    const second = await startApp(env);
    const survivor = await login(second.url, user);
    expect(decodePart(survivor.accessToken, 0).kid).toBe(kid1);
    await refresh(second.url, before.refreshToken!).expect(200);
    await second.close();

    const kid2 = await rotateKeys(loadConfig(env));
    expect(kid2).not.toBe(kid1);

    const third = await startApp(env);
    try {
      const jwks = await request(third.url).get('/.well-known/jwks.json').expect(200);
      expect((jwks.body as { keys: { kid: string }[] }).keys.map((key) => key.kid).sort()).toEqual(
        [kid1, kid2].sort(),
      );
      // The new key is published at once but signs only after the propagation delay.
      const fresh = await login(third.url, user);
      expect(decodePart(fresh.accessToken, 0).kid).toBe(kid1);
      const rows: { private_material: string }[] = await third.app
        .get(DataSource)
        .query('SELECT private_material FROM signing_keys WHERE kid = $1', [kid2]);
      const signedWithNewKey = forge(
        'ES256',
        createPrivateKey(rows[0].private_material),
        { typ: 'at+jwt', kid: kid2 },
        decodePart(fresh.accessToken, 1),
      );
      await logout(third.url, survivor.accessToken).expect(204);
      await logout(third.url, signedWithNewKey).expect(204);
    } finally {
      await third.close();
    }
  });

  it.each(['RS256', 'HS256', 'ES256'])('signs and verifies with JWT_ALGORITHM=%s', async (algorithm) => {
    const app = await startApp({ ...storage.env, JWT_ALGORITHM: algorithm });
    try {
      const user = await registerUser(app.url);
      const body = await login(app.url, user);
      expect(decodePart(body.accessToken, 0)).toMatchObject({ alg: algorithm, typ: 'at+jwt' });
      const jwks = await request(app.url).get('/.well-known/jwks.json').expect(200);
      const keys = (jwks.body as { keys: { alg: string }[] }).keys;
      if (algorithm === 'HS256') expect(keys).toEqual([]);
      else expect(keys.every((key) => key.alg === algorithm)).toBe(true);
      const refreshed = await refresh(app.url, body.refreshToken!).expect(200);
      await logout(app.url, refreshed.body.accessToken as string).expect(204);
    } finally {
      await app.close();
    }
  });
});

describe('production key rotation by configuration', () => {
  let storage: TestStorage;
  const pem = (key: KeyObject, type: 'pkcs8' | 'spki') => key.export({ format: 'pem', type }).toString();

  beforeAll(async () => {
    storage = await createTestStorage();
  }, 60_000);

  afterAll(async () => {
    await storage.drop();
  }, 60_000);

  it('keeps tokens of the previous key valid once it moves to JWT_PREVIOUS_PUBLIC_KEYS', async () => {
    const oldKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const newKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const first = await startApp({ ...storage.env, JWT_PRIVATE_KEY: pem(oldKey.privateKey, 'pkcs8') });
    const user = await registerUser(first.url);
    const before = await login(first.url, user);
    await first.close();

    const second = await startApp({
      ...storage.env,
      JWT_PRIVATE_KEY: pem(newKey.privateKey, 'pkcs8'),
      JWT_PREVIOUS_PUBLIC_KEYS: pem(oldKey.publicKey, 'spki'),
    });
    try {
      const jwks = await request(second.url).get('/.well-known/jwks.json').expect(200);
      expect((jwks.body as { keys: unknown[] }).keys).toHaveLength(2);
      const after = await login(second.url, user);
      expect(decodePart(after.accessToken, 0).kid).not.toBe(decodePart(before.accessToken, 0).kid);
      await logout(second.url, before.accessToken).expect(204);
    } finally {
      await second.close();
    }
  });
});
