import { createHash, randomBytes } from 'node:crypto';

export const RECOVERY_CODE_COUNT = 10;
/** Crockford's base32: no I, L, O or U, so a code read aloud or copied by hand survives. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * Ten codes of 80 bits each (16 base32 characters in four groups). 80 rather than the minimum 50: the
 * database keeps a fast hash, and 80 bits make even an offline search of a stolen table hopeless.
 */
export function newRecoveryCodes(): string[] {
  return Array.from({ length: RECOVERY_CODE_COUNT }, () => {
    const bytes = randomBytes(10);
    let bits = 0n;
    for (const byte of bytes) bits = (bits << 8n) | BigInt(byte);
    let code = '';
    for (let i = 0; i < 16; i += 1) {
      code = ALPHABET[Number(bits & 31n)] + code;
      bits >>= 5n;
    }
    return code.match(/.{4}/g)!.join('-');
  });
}

/** What the user typed, as stored: case, dashes and spaces do not matter; O, I and L read as 0, 1, 1. */
export function normalizeRecoveryCode(code: string): string {
  return code.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
}

export function looksLikeRecoveryCode(code: string): boolean {
  return /^[0-9A-HJKMNP-TV-Z]{16}$/.test(normalizeRecoveryCode(code));
}

/** Bound to the user, so one hash never matches another user's code. */
export function hashRecoveryCode(userId: string, code: string): string {
  return createHash('sha256')
    .update(`${userId}:${normalizeRecoveryCode(code)}`)
    .digest('hex');
}
