import request from 'supertest';
import {
  expectError,
  refresh,
  sessionLogin,
  SessionCaller,
  TokenCaller,
  tokenLogin,
} from './support/clients';
import { registerUser, RegisteredUser, STRONG_PASSWORD } from './support/factories';
import { createTestStorage, startApp, TestStorage } from './support/test-app';

/**
 * A restart in either storage mode loses nothing: users, sessions (live and ended), refresh families (live,
 * rotated and revoked), the signing keys and the login limits' counts are all where the next start finds them.
 */
describe('durability: a restart keeps users, sessions, families and keys', () => {
  let storage: TestStorage;

  beforeAll(async () => {
    storage = await createTestStorage();
  });

  afterAll(async () => {
    await storage.drop();
  });

  it('serves after a restart everything the first run issued, and keeps refusing what it revoked', async () => {
    const env = { ...storage.env, LOGIN_MAX_FAILURES: '2' };
    const first = await startApp(env);
    let user: RegisteredUser;
    let session: SessionCaller;
    let endedSession: SessionCaller;
    let tokens: TokenCaller;
    let rotated: TokenCaller;
    let loggedOut: TokenCaller;
    let jwks: unknown;
    let locked: RegisteredUser;
    try {
      user = await registerUser(first.url);
      session = await sessionLogin(first.url, user);
      endedSession = await sessionLogin(first.url, user);
      await request(first.url)
        .post('/api/auth/session/logout')
        .set('Cookie', endedSession.cookie)
        .set('X-CSRF-Token', endedSession.csrfToken)
        .expect(204);
      tokens = await tokenLogin(first.url, user);
      const rotation = await refresh(first.url, tokens.refreshToken);
      expect(rotation.status).toBe(200);
      rotated = rotation.body as TokenCaller;
      loggedOut = await tokenLogin(first.url, user);
      await request(first.url)
        .post('/api/auth/token/logout')
        .set('Authorization', `Bearer ${loggedOut.accessToken}`)
        .send({})
        .expect(204);
      jwks = (await request(first.url).get('/.well-known/jwks.json').expect(200)).body;
      locked = await registerUser(first.url);
      for (let i = 0; i < 2; i += 1) {
        await request(first.url)
          .post('/api/auth/token/login')
          .send({ email: locked.email, password: `${STRONG_PASSWORD}-wrong` })
          .expect(401);
      }
    } finally {
      await first.close();
    }

    const second = await startApp(env);
    try {
      const api = () => request(second.url);
      await api().post('/api/auth/register').send({ email: user.email, password: user.password }).expect(409);
      const current = await api().get('/api/auth/session').set('Cookie', session.cookie).expect(200);
      expect(current.body).toMatchObject({ user: { id: user.id }, csrfToken: session.csrfToken });
      expectError(
        await api().get('/api/auth/session').set('Cookie', endedSession.cookie),
        401,
        'SESSION_INVALID',
      );
      // Same keys: the JWKS is unchanged and a token signed before the restart still verifies.
      expect((await api().get('/.well-known/jwks.json').expect(200)).body).toEqual(jwks);
      expectError(
        await api()
          .post('/api/auth/token/logout')
          .set('Authorization', `Bearer ${loggedOut.accessToken}`)
          .send({}),
        401,
        'TOKEN_REVOKED',
      );
      expectError(await refresh(second.url, loggedOut.refreshToken), 401, 'REFRESH_TOKEN_INVALID');
      // The family continues from its latest token, and its access token still verifies.
      const next = await refresh(second.url, rotated.refreshToken);
      expect(next.status).toBe(200);
      await api()
        .post('/api/auth/token/logout')
        .set('Authorization', `Bearer ${rotated.accessToken}`)
        .send({})
        .expect(204);
      const lockedLogin = await api()
        .post('/api/auth/session/login')
        .send({ email: locked.email, password: locked.password });
      expectError(lockedLogin, 429, 'RATE_LIMITED');
    } finally {
      await second.close();
    }
  });
});
