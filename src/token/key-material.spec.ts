import { JwtService } from '@nestjs/jwt';
import { createPrivateKey, createPublicKey, randomUUID } from 'node:crypto';
import type { JwtAlgorithm } from '../config/app-config';
import { generateKeyMaterial, kidOf, signingKeyFrom, verifyingKeyFrom } from './key-material';

// Kids derived by the earlier thumbprint code (hand-written, then jose's): a key must keep its kid across such
// a change, or every token in flight would name a key the ring no longer knows.
const KNOWN_KIDS: [JwtAlgorithm, string, string][] = [
  [
    'ES256',
    '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgYV0wGDmC1m8YPj7D\nFycwhDYKrh7n8w6BHJG+ggijk0KhRANCAAS0Y+dysi8FMf//i6ye+mZUDSyP5o0D\nHHUQmHlxiXCeIW6uwsB7uJWicqNuINQqCxPChbhhsCt99fxJAuEGEJjY\n-----END PRIVATE KEY-----\n',
    '98nQCCuOGtZJMtnD',
  ],
  ['HS256', 'a-development-secret-of-32-chars-or-more', 'FRiaonyIZ_53XfhO'],
];

describe('key material', () => {
  it('derives the kid from the RFC 7638 thumbprint (the RFC example key), shortened', () => {
    const kid = kidOf({
      kty: 'RSA',
      e: 'AQAB',
      n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
    });
    expect(kid).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs'.slice(0, 16));
  });

  it.each(KNOWN_KIDS)('keeps the kid %s keys had before', (algorithm, material, kid) => {
    expect(signingKeyFrom(algorithm, material).kid).toBe(kid);
  });

  it.each(['ES256', 'RS256', 'HS256'] as JwtAlgorithm[])(
    '%s material round-trips to the same kid, and its retired form verifies what it signed',
    (algorithm) => {
      const material = generateKeyMaterial(algorithm);
      const current = signingKeyFrom(algorithm, material);
      expect(signingKeyFrom(algorithm, material).kid).toBe(current.kid);
      const retiredMaterial =
        algorithm === 'HS256'
          ? material
          : createPublicKey(createPrivateKey(material)).export({ format: 'pem', type: 'spki' }).toString();
      const retired = verifyingKeyFrom(algorithm, retiredMaterial);
      expect(retired).toMatchObject({ kid: current.kid, algorithm });
      expect(retired.signing).toBeUndefined();
      const jwt = new JwtService();
      const claims = { sub: randomUUID(), sid: randomUUID() };
      const token = jwt.sign(claims, { algorithm, privateKey: current.signing });
      // jsonwebtoken takes KeyObjects; @nestjs/jwt's typings list only strings and buffers for verifying.
      const verified = jwt.verify<typeof claims>(token, {
        algorithms: [algorithm],
        publicKey: retired.verifying as unknown as Buffer,
      });
      expect(verified).toMatchObject(claims);
    },
  );

  it.each(['ES256', 'RS256'] as JwtAlgorithm[])(
    '%s publishes a public JWK with kid, alg and use, and no private part',
    (algorithm) => {
      const key = signingKeyFrom(algorithm, generateKeyMaterial(algorithm));
      expect(key.jwk).toMatchObject({ kid: key.kid, alg: algorithm, use: 'sig' });
      expect(key.jwk).not.toHaveProperty('d');
      expect(key.signing).toMatchObject({ type: 'private' });
      expect(key.verifying).toMatchObject({ type: 'public' });
    },
  );

  it('never publishes an HS256 secret', () => {
    const key = signingKeyFrom('HS256', generateKeyMaterial('HS256'));
    expect(key.jwk).toBeUndefined();
    expect(key.signing).toBe(key.verifying);
    expect(key.verifying).toMatchObject({ type: 'secret' });
  });

  it('refuses a key that does not fit the algorithm', () => {
    expect(() => signingKeyFrom('ES256', generateKeyMaterial('RS256'))).toThrow(/JWT_ALGORITHM=ES256/);
    const ec = createPublicKey(createPrivateKey(generateKeyMaterial('ES256')));
    expect(() => verifyingKeyFrom('RS256', ec.export({ format: 'pem', type: 'spki' }).toString())).toThrow(
      /JWT_ALGORITHM=RS256/,
    );
  });
});
