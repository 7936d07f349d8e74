import { createHmac, KeyObject, sign, timingSafeEqual, verify } from 'node:crypto';
import type { JwtAlgorithm } from '../config/app-config';

/**
 * Compact JWS over node:crypto. jsonwebtoken 9 has no EdDSA, and owning the few lines of JWS lets the
 * verifier check the header (alg, typ, kid) before any key is chosen, with no path that reads a key from
 * the token.
 */
export interface JwsHeader {
  alg: string;
  typ?: unknown;
  kid?: unknown;
  [name: string]: unknown;
}

export interface ParsedJws {
  header: JwsHeader;
  payload: Record<string, unknown>;
  signingInput: string;
  signature: Buffer;
}

const SEGMENT = /^[A-Za-z0-9_-]+$/;
const MAX_TOKEN_LENGTH = 4096;

function encode(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function decodeObject(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

export function signJws(
  algorithm: JwtAlgorithm,
  key: KeyObject,
  header: Record<string, unknown>,
  payload: object,
): string {
  const signingInput = `${encode({ ...header, alg: algorithm })}.${encode(payload)}`;
  return `${signingInput}.${rawSignature(algorithm, key, Buffer.from(signingInput)).toString('base64url')}`;
}

function rawSignature(algorithm: JwtAlgorithm, key: KeyObject, data: Buffer): Buffer {
  switch (algorithm) {
    case 'HS256':
      return createHmac('sha256', key).update(data).digest();
    case 'ES256':
      return sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
    case 'RS256':
      return sign('sha256', data, key);
    case 'EdDSA':
      return sign(null, data, key);
  }
}

/** Splits and decodes a compact JWS; undefined for anything that is not one. Verifies nothing. */
export function parseJws(token: string): ParsedJws | undefined {
  if (token.length > MAX_TOKEN_LENGTH) return undefined;
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((part) => SEGMENT.test(part))) return undefined;
  const [head, body, signature] = parts as [string, string, string];
  const header = decodeObject(head);
  const payload = decodeObject(body);
  if (!header || !payload || typeof header.alg !== 'string') return undefined;
  return {
    header: header as JwsHeader,
    payload,
    signingInput: `${head}.${body}`,
    signature: Buffer.from(signature, 'base64url'),
  };
}

/** Checks the signature with the given key under the given algorithm only; never throws. */
export function verifySignature(algorithm: JwtAlgorithm, key: KeyObject, jws: ParsedJws): boolean {
  const data = Buffer.from(jws.signingInput);
  try {
    switch (algorithm) {
      case 'HS256': {
        const expected = createHmac('sha256', key).update(data).digest();
        return expected.length === jws.signature.length && timingSafeEqual(expected, jws.signature);
      }
      case 'ES256':
        return (
          jws.signature.length === 64 &&
          verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, jws.signature)
        );
      case 'RS256':
        return verify('sha256', data, key, jws.signature);
      case 'EdDSA':
        return jws.signature.length === 64 && verify(null, data, key, jws.signature);
    }
  } catch {
    return false;
  }
}
