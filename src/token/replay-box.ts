import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Seals a rotation's response under a key derived from the refresh token that was presented, so the
 * database holds the replay answer only in a form that the token's holder alone can open.
 */
const INFO = Buffer.from('refresh-replay-v1');

function keyFor(refreshToken: string, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(refreshToken), salt, INFO, 32));
}

export function seal(refreshToken: string, plaintext: string): string {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keyFor(refreshToken, salt), iv);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [salt, iv, cipher.getAuthTag(), body].map((part) => part.toString('base64url')).join('.');
}

/** The sealed text, or undefined when the box was not sealed under this token (or was tampered with). */
export function open(refreshToken: string, box: string): string | undefined {
  try {
    const [salt, iv, tag, body] = box.split('.').map((part) => Buffer.from(part, 'base64url'));
    if (!salt || !iv || !tag || !body) return undefined;
    const decipher = createDecipheriv('aes-256-gcm', keyFor(refreshToken, salt), iv);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/** 256 bits from the CSPRNG, base64url. */
export function newOpaqueToken(): string {
  return randomBytes(32).toString('base64url');
}
