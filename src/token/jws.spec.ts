import { createPublicKey, createSecretKey, generateKeyPairSync, KeyObject, randomBytes } from 'node:crypto';
import type { JwtAlgorithm } from '../config/app-config';
import { parseJws, signJws, verifySignature } from './jws';
import { signingKeyFrom, thumbprint, generateKeyMaterial } from './key-material';
import { open, seal } from './replay-box';

const keys: [JwtAlgorithm, KeyObject, KeyObject][] = [
  ['ES256', ...pair(generateKeyPairSync('ec', { namedCurve: 'P-256' }))],
  ['EdDSA', ...pair(generateKeyPairSync('ed25519'))],
  ['RS256', ...pair(generateKeyPairSync('rsa', { modulusLength: 2048 }))],
  ['HS256', createSecretKey(randomBytes(32)), createSecretKey(randomBytes(32))],
];

function pair(keyPair: { privateKey: KeyObject; publicKey: KeyObject }): [KeyObject, KeyObject] {
  return [keyPair.privateKey, keyPair.publicKey];
}

describe('jws', () => {
  it.each(keys)('%s signs and verifies, and refuses tampering', (algorithm, signingKey, publicKey) => {
    const verifying = algorithm === 'HS256' ? signingKey : publicKey;
    const token = signJws(algorithm, signingKey, { typ: 'at+jwt', kid: 'k' }, { sub: 'a' });
    const parsed = parseJws(token)!;
    expect(parsed.header).toEqual({ alg: algorithm, typ: 'at+jwt', kid: 'k' });
    expect(verifySignature(algorithm, verifying, parsed)).toBe(true);
    const edited = parseJws(
      `${token.split('.')[0]}.${Buffer.from('{"sub":"b"}').toString('base64url')}.${token.split('.')[2]}`,
    )!;
    expect(verifySignature(algorithm, verifying, edited)).toBe(false);
    expect(verifySignature(algorithm, verifying, parseJws(token.slice(0, -4))!)).toBe(false);
  });

  it.each(['', 'a.b', 'a.b.c.d', 'a.b.', 'e30.e30.e30', 'W10.e30.AA', 'e30.W10.AA', 'a b.c.d'])(
    'does not parse %p as a JWS with an alg',
    (token) => {
      expect(parseJws(token)).toBeUndefined();
    },
  );
});

describe('key material', () => {
  it('computes the RFC 7638 thumbprint (the RFC example key), shortened', () => {
    const key = createPublicKeyFromJwk({
      kty: 'RSA',
      e: 'AQAB',
      n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
    });
    expect(thumbprint(key)).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs'.slice(0, 16));
  });

  it.each(['ES256', 'EdDSA', 'RS256', 'HS256'] as JwtAlgorithm[])(
    '%s material round-trips to the same kid',
    (algorithm) => {
      const material = generateKeyMaterial(algorithm);
      expect(signingKeyFrom(algorithm, material).kid).toBe(signingKeyFrom(algorithm, material).kid);
    },
  );

  it('refuses a key that does not fit the algorithm', () => {
    expect(() => signingKeyFrom('ES256', generateKeyMaterial('EdDSA'))).toThrow(/JWT_ALGORITHM=ES256/);
  });
});

describe('replay box', () => {
  it('opens only with the token it was sealed under', () => {
    const box = seal('token-a', '{"x":1}');
    expect(open('token-a', box)).toBe('{"x":1}');
    expect(open('token-b', box)).toBeUndefined();
    expect(open('token-a', `${box.slice(0, -2)}AA`)).toBeUndefined();
  });
});

function createPublicKeyFromJwk(jwk: Record<string, string>): KeyObject {
  return createPublicKey({ key: jwk, format: 'jwk' });
}
