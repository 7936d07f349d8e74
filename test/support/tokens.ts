import { createHmac, createSign, KeyObject, sign } from 'node:crypto';

/** Test-side JWS forging, independent of the service's own JWS code. */
export function b64(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

export function decodePart<T = Record<string, unknown>>(token: string, index: 0 | 1): T {
  return JSON.parse(Buffer.from(token.split('.')[index], 'base64url').toString('utf8')) as T;
}

export function forge(
  alg: 'ES256' | 'EdDSA' | 'RS256' | 'HS256',
  key: KeyObject | string | Buffer,
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
): string {
  const input = `${b64({ alg, ...header })}.${b64(payload)}`;
  let signature: Buffer;
  if (alg === 'HS256') signature = createHmac('sha256', key).update(input).digest();
  else if (alg === 'ES256')
    signature = sign('sha256', Buffer.from(input), { key: key as KeyObject, dsaEncoding: 'ieee-p1363' });
  else if (alg === 'EdDSA') signature = sign(null, Buffer.from(input), key);
  else signature = createSign('sha256').update(input).sign(key);
  return `${input}.${signature.toString('base64url')}`;
}
