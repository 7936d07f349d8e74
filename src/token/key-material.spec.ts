import { createPrivateKey, createPublicKey, randomUUID } from 'node:crypto';
import type { JwtAlgorithm } from '../config/app-config';
import { verifyAccessToken } from './access-token-verifier';
import { signAccessToken } from './access-tokens';
import { generateKeyMaterial, kidOf, signingKeyFrom, verifyingKeyFrom } from './key-material';

// Kids the hand-written thumbprint derived before jose: a key must keep its kid across that change, or every
// token in flight would name a key the ring no longer knows.
const KNOWN_KIDS: [JwtAlgorithm, string, string][] = [
  [
    'ES256',
    '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgYV0wGDmC1m8YPj7D\nFycwhDYKrh7n8w6BHJG+ggijk0KhRANCAAS0Y+dysi8FMf//i6ye+mZUDSyP5o0D\nHHUQmHlxiXCeIW6uwsB7uJWicqNuINQqCxPChbhhsCt99fxJAuEGEJjY\n-----END PRIVATE KEY-----\n',
    '98nQCCuOGtZJMtnD',
  ],
  [
    'EdDSA',
    '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIPKVJQnyvhmlfuC9aTVEN9osGvIfJjOvteEYWcybMaL+\n-----END PRIVATE KEY-----\n',
    'z8a0pUZ1oDdtrcoK',
  ],
  ['HS256', 'a-development-secret-of-32-chars-or-more', 'FRiaonyIZ_53XfhO'],
];

describe('key material', () => {
  it('derives the kid from the RFC 7638 thumbprint (the RFC example key), shortened', async () => {
    const kid = await kidOf({
      kty: 'RSA',
      e: 'AQAB',
      n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
    });
    expect(kid).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs'.slice(0, 16));
  });

  it.each(KNOWN_KIDS)('keeps the kid %s keys had before jose', async (algorithm, material, kid) => {
    expect((await signingKeyFrom(algorithm, material)).kid).toBe(kid);
  });

  it.each(['ES256', 'EdDSA', 'RS256', 'HS256'] as JwtAlgorithm[])(
    '%s material round-trips to the same kid, and its retired form verifies under it',
    async (algorithm) => {
      const material = generateKeyMaterial(algorithm);
      const current = await signingKeyFrom(algorithm, material);
      expect((await signingKeyFrom(algorithm, material)).kid).toBe(current.kid);
      const retiredMaterial =
        algorithm === 'HS256'
          ? material
          : createPublicKey(createPrivateKey(material)).export({ format: 'pem', type: 'spki' }).toString();
      const retired = await verifyingKeyFrom(algorithm, retiredMaterial);
      expect(retired).toMatchObject({ kid: current.kid, algorithm });
      expect(retired.signing).toBeUndefined();
      const now = Math.floor(Date.now() / 1000);
      const token = await signAccessToken(current as Parameters<typeof signAccessToken>[0], {
        iss: 'https://auth.test.example',
        aud: 'api',
        sub: randomUUID(),
        role: 'user',
        sid: randomUUID(),
        jti: randomUUID(),
        amr: ['pwd'],
        iat: now,
        exp: now + 60,
      });
      const settings = { algorithm, issuer: 'https://auth.test.example', audience: 'api', leewaySeconds: 5 };
      await expect(verifyAccessToken(token, () => retired, settings, now)).resolves.toMatchObject({
        ok: true,
      });
    },
  );

  it.each(['ES256', 'EdDSA', 'RS256'] as JwtAlgorithm[])(
    '%s publishes a public JWK with kid, alg and use, and no private part',
    async (algorithm) => {
      const key = await signingKeyFrom(algorithm, generateKeyMaterial(algorithm));
      expect(key.jwk).toMatchObject({ kid: key.kid, alg: algorithm, use: 'sig' });
      expect(key.jwk).not.toHaveProperty('d');
      expect(key.signing).toMatchObject({ type: 'private', extractable: false });
      expect(key.verifying).toMatchObject({ type: 'public' });
    },
  );

  it('never publishes an HS256 secret, and keeps it unextractable', async () => {
    const key = await signingKeyFrom('HS256', generateKeyMaterial('HS256'));
    expect(key.jwk).toBeUndefined();
    expect(key.signing).toBe(key.verifying);
    expect(key.verifying).toMatchObject({ type: 'secret', extractable: false });
  });

  it('refuses a key that does not fit the algorithm', async () => {
    await expect(signingKeyFrom('ES256', generateKeyMaterial('EdDSA'))).rejects.toThrow(
      /JWT_ALGORITHM=ES256/,
    );
    const rsa = createPublicKey(createPrivateKey(generateKeyMaterial('RS256')));
    await expect(
      verifyingKeyFrom('EdDSA', rsa.export({ format: 'pem', type: 'spki' }).toString()),
    ).rejects.toThrow(/JWT_ALGORITHM=EdDSA/);
  });
});
