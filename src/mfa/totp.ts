import { randomBytes } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';

/** RFC 6238 as every authenticator app implements it: SHA-1, 6 digits, 30-second steps. */
export const TOTP_PERIOD_SECONDS = 30;
const DIGITS = 6;
/** Steps accepted either side of the current one, for clocks that drift and codes typed near a boundary. */
const DRIFT_STEPS = 1;

/** 160 bits, the HMAC-SHA-1 key length RFC 4226 recommends. */
export function newTotpSecret(): Buffer {
  return randomBytes(20);
}

export function base32Of(secret: Buffer): string {
  return new Secret({ buffer: toArrayBuffer(secret) }).base32;
}

function totp(secret: Buffer, digits = DIGITS, label = '', issuer = ''): TOTP {
  return new TOTP({
    issuer,
    label,
    algorithm: 'SHA1',
    digits,
    period: TOTP_PERIOD_SECONDS,
    secret: new Secret({ buffer: toArrayBuffer(secret) }),
  });
}

export function stepAt(timeMs: number): number {
  return Math.floor(timeMs / 1000 / TOTP_PERIOD_SECONDS);
}

/** The code of one time step; `digits` is there for the RFC's 8-digit test vectors. */
export function totpCode(secret: Buffer, step: number, digits = DIGITS): string {
  return totp(secret, digits).generate({ timestamp: step * TOTP_PERIOD_SECONDS * 1000 });
}

/** The time step whose code this is, within the drift window around `nowMs`; compared in constant time. */
export function matchingStep(secret: Buffer, code: string, nowMs: number): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const delta = totp(secret).validate({ token: code, timestamp: nowMs, window: DRIFT_STEPS });
  return delta === null ? undefined : stepAt(nowMs) + delta;
}

/** The `otpauth://totp/…` URL authenticator apps scan: the issuer and the account's email name it. */
export function otpauthUrl(secret: Buffer, issuer: string, email: string): string {
  return totp(secret, DIGITS, email, issuer).toString();
}

function toArrayBuffer(buffer: Buffer): ArrayBuffer {
  return buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength) as ArrayBuffer;
}
