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

/** One key of the ring: `signing` only for the current key; symmetric keys verify with themselves. */
export interface RingKey {
  kid: string;
  algorithm: JwtAlgorithm;
  signing?: KeyObject;
  verifying: KeyObject;
}

/** Private material as stored in the signing_keys table: PKCS#8 PEM, or the base64url HS256 secret. */
export function generateKeyMaterial(algorithm: JwtAlgorithm): string {
  switch (algorithm) {
    case 'ES256':
      return pem(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    case 'EdDSA':
      return pem(generateKeyPairSync('ed25519').privateKey);
    case 'RS256':
      return pem(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
    case 'HS256':
      return randomBytes(32).toString('base64url');
  }
}

function pem(key: KeyObject): string {
  return key.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** Parses stored or configured private material into the key objects used for every request. */
export function signingKeyFrom(algorithm: JwtAlgorithm, material: string | Buffer): RingKey {
  if (algorithm === 'HS256') {
    const secret = createSecretKey(typeof material === 'string' ? Buffer.from(material) : material);
    return { kid: thumbprint(secret), algorithm, signing: secret, verifying: secret };
  }
  const privateKey = createPrivateKey(material);
  assertKeyFits(algorithm, privateKey);
  const publicKey = createPublicKey(privateKey);
  return { kid: thumbprint(publicKey), algorithm, signing: privateKey, verifying: publicKey };
}

/** A retired key that only verifies: a public PEM, or for HS256 the old secret. */
export function verifyingKeyFrom(algorithm: JwtAlgorithm, material: string): RingKey {
  if (algorithm === 'HS256') {
    const secret = createSecretKey(Buffer.from(material));
    return { kid: thumbprint(secret), algorithm, verifying: secret };
  }
  const publicKey = createPublicKey(material);
  assertKeyFits(algorithm, publicKey);
  return { kid: thumbprint(publicKey), algorithm, verifying: publicKey };
}

/** A key of the wrong type would sign tokens no verifier accepts; refuse it at start instead. */
function assertKeyFits(algorithm: JwtAlgorithm, key: KeyObject): void {
  const type = key.asymmetricKeyType;
  const ok =
    (algorithm === 'ES256' && type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') ||
    (algorithm === 'EdDSA' && type === 'ed25519') ||
    (algorithm === 'RS256' && type === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048);
  if (!ok) throw new Error(`the configured JWT key does not fit JWT_ALGORITHM=${algorithm}`);
}

const THUMBPRINT_MEMBERS: Record<string, string[]> = {
  EC: ['crv', 'kty', 'x', 'y'],
  OKP: ['crv', 'kty', 'x'],
  RSA: ['e', 'kty', 'n'],
  oct: ['k', 'kty'],
};

/** RFC 7638 JWK thumbprint, base64url, shortened: stable across instances and restarts. */
export function thumbprint(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' }) as Record<string, unknown>;
  const members = THUMBPRINT_MEMBERS[String(jwk.kty)];
  if (!members) throw new Error(`unsupported key type ${String(jwk.kty)}`);
  const canonical = JSON.stringify(Object.fromEntries(members.map((name) => [name, jwk[name]])));
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 16);
}

/** The public JWK published in the JWKS; never called for symmetric keys. */
export function publicJwk(key: RingKey): JsonWebKey {
  return { ...key.verifying.export({ format: 'jwk' }), kid: key.kid, alg: key.algorithm, use: 'sig' };
}
