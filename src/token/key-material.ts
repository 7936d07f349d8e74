import {
  createHash,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  generateKeyPairSync,
  JsonWebKey,
  KeyObject,
  randomBytes,
} from 'node:crypto';
import type { JwtAlgorithm } from '../config/app-config';
import { keyFitProblem } from '../config/load-config';

/** A public JWK as the JWKS publishes it. */
export type PublishedJwk = JsonWebKey & { kid: string; alg: JwtAlgorithm; use: 'sig' };

/**
 * One key of the ring, parsed into node:crypto KeyObjects when the ring is loaded (jsonwebtoken takes them as
 * they are): `signing` only for the current key; symmetric keys verify with themselves.
 */
export interface RingKey {
  kid: string;
  algorithm: JwtAlgorithm;
  signing?: KeyObject;
  verifying: KeyObject;
  /** What the JWKS publishes; a symmetric key has none. */
  jwk?: PublishedJwk;
}

/** Private material as stored in the signing_keys table: PKCS#8 PEM, or the base64url HS256 secret. */
export function generateKeyMaterial(algorithm: JwtAlgorithm): string {
  switch (algorithm) {
    case 'ES256':
      return pem(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    case 'RS256':
      return pem(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
    case 'HS256':
      return randomBytes(32).toString('base64url');
  }
}

function pem(key: KeyObject): string {
  return key.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** Parses stored or configured private material into the keys used for every request. */
export function signingKeyFrom(algorithm: JwtAlgorithm, material: string | Buffer): RingKey {
  if (algorithm === 'HS256') {
    const secret = secretKey(typeof material === 'string' ? Buffer.from(material) : material);
    return { ...secret, signing: secret.verifying };
  }
  const privateKey = createPrivateKey(material);
  assertKeyFits(algorithm, privateKey);
  return { ...publicKey(algorithm, createPublicKey(privateKey)), signing: privateKey };
}

/** A retired key that only verifies: a public PEM, or for HS256 the old secret. */
export function verifyingKeyFrom(algorithm: JwtAlgorithm, material: string): RingKey {
  if (algorithm === 'HS256') return secretKey(Buffer.from(material));
  const key = createPublicKey(material);
  assertKeyFits(algorithm, key);
  return publicKey(algorithm, key);
}

function publicKey(algorithm: JwtAlgorithm, key: KeyObject): RingKey {
  const jwk = key.export({ format: 'jwk' });
  const kid = kidOf(jwk);
  return { kid, algorithm, verifying: key, jwk: { ...jwk, kid, alg: algorithm, use: 'sig' } };
}

function secretKey(secret: Buffer): RingKey {
  return {
    kid: kidOf({ kty: 'oct', k: secret.toString('base64url') }),
    algorithm: 'HS256',
    verifying: createSecretKey(secret),
  };
}

/** A key of the wrong type would sign tokens no verifier accepts; refuse it at start instead. */
function assertKeyFits(algorithm: Exclude<JwtAlgorithm, 'HS256'>, key: KeyObject): void {
  const problem = keyFitProblem(algorithm, key);
  if (problem) throw new Error(`the configured JWT key ${problem}`);
}

/** The members RFC 7638 hashes, per key type, in the lexicographic order it requires. */
const THUMBPRINT_MEMBERS: Record<string, (keyof JsonWebKey)[]> = {
  EC: ['crv', 'kty', 'x', 'y'],
  RSA: ['e', 'kty', 'n'],
  oct: ['k', 'kty'],
};

/** RFC 7638 JWK thumbprint (SHA-256, base64url), shortened: every instance derives the same kid from the same key. */
export function kidOf(jwk: JsonWebKey): string {
  const members = THUMBPRINT_MEMBERS[jwk.kty ?? ''];
  if (!members) throw new Error(`no thumbprint for a ${jwk.kty} key`);
  const canonical = JSON.stringify(Object.fromEntries(members.map((name) => [name, jwk[name]])));
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 16);
}
