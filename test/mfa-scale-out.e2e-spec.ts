import request from 'supertest';
import { asBearer, expectError, tokenLogin } from './support/clients';
import { registerUser } from './support/factories';
import { ensureBuilt, Instance, shareDatabase, SharedDatabase, spawnInstance } from './support/instances';
import { enrolSecondFactor, jwtClaims, loginChallenge, totpAt, verifyMfa } from './support/mfa';
import { createTestStorage, TestStorage } from './support/test-app';

/**
 * The second factor on two instances (separate processes, one database, one Redis in PostgreSQL mode):
 * a factor confirmed on one is enforced by the other at once, a login begun on one completes on the other,
 * and a code, TOTP or recovery, works once across both. The real clock runs here: codes are taken for the
 * next time step, which the one-step drift accepts.
 */
describe('second factor on two instances', () => {
  let storage: TestStorage;
  let shared: SharedDatabase;
  let a: Instance;
  let b: Instance;

  beforeAll(async () => {
    ensureBuilt();
    storage = await createTestStorage();
    shared = await shareDatabase(storage.env);
    const env = { ...shared.env, PUBLIC_URL: 'http://auth.test' };
    [a, b] = await Promise.all([spawnInstance(env), spawnInstance(env)]);
  }, 180_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await shared?.close();
    await storage?.drop();
  });

  it('enforces, completes and spends codes across instances', async () => {
    const user = await registerUser(a.url);
    // B reads the user before the factor exists, so its cached state must be invalidated by A's confirm.
    await tokenLogin(b.url, user);
    const factor = await enrolSecondFactor(a.url, await tokenLogin(a.url, user), user.password);
    const mfaToken = await loginChallenge(b.url, user, 'token');

    // Begun on B, completed on A, with the next step's code.
    const code = totpAt(factor.secret, Date.now() + 30_000);
    const verified = await verifyMfa(a.url, mfaToken, code);
    expect(verified.status).toBe(200);
    const body = verified.body as { accessToken: string; refreshToken: string };
    expect(jwtClaims(body.accessToken).amr).toEqual(['pwd', 'otp']);
    const me = await asBearer(body.accessToken, body.refreshToken)
      .auth(request(b.url).get('/api/me'))
      .expect(200);
    expect(me.body).toMatchObject({ user: { mfaEnabled: true }, auth: { mfa: true } });

    // The same code on the other instance is a replay.
    expectError(
      await verifyMfa(b.url, await loginChallenge(b.url, user, 'session'), code),
      401,
      'MFA_INVALID',
    );

    // One recovery code, dozens of logins spread over both instances: exactly one gets in. The logins are
    // begun one after another (parallel password checks would meet the account's limit), the codes at once.
    const pending: string[] = [];
    for (let i = 0; i < 20; i += 1) pending.push(await loginChallenge(i % 2 ? a.url : b.url, user, 'token'));
    const recovery = factor.recoveryCodes[0];
    const responses = await Promise.all(
      pending.map((token, i) => verifyMfa(i % 2 ? b.url : a.url, token, recovery)),
    );
    expect(responses.filter((response) => response.status === 200)).toHaveLength(1);
  });
});
