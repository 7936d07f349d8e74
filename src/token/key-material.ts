import { createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject, randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, CryptoKey, exportJWK, importJWK, JWK } from 'jose';
import type { JwtAlgorithm } from '../config/app-config';

/**
 * One key of the ring, prepared for jose when the ring is loaded: `signing` only for the current key;
 * symmetric keys verify with themselves.
 */
export interface RingKey {
  kid: string;
  algorithm: JwtAlgorithm;
  signing?: CryptoKey;
  verifying: CryptoKey;
  /** What the JWKS publishes; a symmetric key has none. */
  jwk?: JWK;
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

/** Parses stored or configured private material into the keys used for every request. */
export async function signingKeyFrom(algorithm: JwtAlgorithm, material: string | Buffer): Promise<RingKey> {
  if (algorithm === 'HS256') {
    const secret = await secretKey(typeof material === 'string' ? Buffer.from(material) : material);
    return { ...secret, signing: secret.verifying };
  }
  const privateKey = createPrivateKey(material);
  assertKeyFits(algorithm, privateKey);
  const verifying = await publicKey(algorithm, createPublicKey(privateKey));
  return { ...verifying, signing: await asCryptoKey(await exportJWK(privateKey), algorithm) };
}

/** A retired key that only verifies: a public PEM, or for HS256 the old secret. */
export async function verifyingKeyFrom(algorithm: JwtAlgorithm, material: string): Promise<RingKey> {
  if (algorithm === 'HS256') return secretKey(Buffer.from(material));
  const key = createPublicKey(material);
  assertKeyFits(algorithm, key);
  return publicKey(algorithm, key);
}

async function publicKey(algorithm: JwtAlgorithm, key: KeyObject): Promise<RingKey> {
  const jwk = await exportJWK(key);
  const kid = await kidOf(jwk);
  return {
    kid,
    algorithm,
    verifying: await asCryptoKey(jwk, algorithm),
    jwk: { ...jwk, kid, alg: algorithm, use: 'sig' },
  };
}

async function secretKey(secret: Buffer): Promise<RingKey> {
  // jose's importJWK hands an oct key back as bytes, which it would import again on every verification.
  const key = await crypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
    'verify',
  ]);
  return { kid: await kidOf(await exportJWK(secret)), algorithm: 'HS256', verifying: key };
}

async function asCryptoKey(jwk: JWK, algorithm: JwtAlgorithm): Promise<CryptoKey> {
  const key = await importJWK(jwk, algorithm);
  if (key instanceof Uint8Array) throw new Error(`a ${algorithm} key must not be symmetric`);
  return key;
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

/** RFC 7638 JWK thumbprint, shortened: every instance derives the same kid from the same key. */
export async function kidOf(jwk: JWK): Promise<string> {
  return (await calculateJwkThumbprint(jwk, 'sha256')).slice(0, 16);
}
