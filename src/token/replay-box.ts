import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';

/**
 * Seals a rotation's response under a key derived from the refresh token that was presented, so the
 * database holds the replay answer only in a form that the token's holder alone can open.
 */
const INFO_AND_COUNTER = Buffer.from('refresh-replay-v1\x01');

/**
 * HKDF-SHA256 (RFC 5869) for a 32-byte key: one extract and one expand block, written out as the two
 * HMACs they are. The same bytes as `hkdfSync('sha256', token, salt, 'refresh-replay-v1', 32)`, which
 * sealed earlier boxes, for a third of its cost (node's hkdfSync builds key objects and a job per call).
 */
function keyFor(refreshToken: string, salt: Buffer): Buffer {
  const pseudoRandomKey = createHmac('sha256', salt).update(refreshToken).digest();
  return createHmac('sha256', pseudoRandomKey).update(INFO_AND_COUNTER).digest();
}

export function seal(refreshToken: string, plaintext: string): string {
  const random = randomBytes(28);
  const salt = random.subarray(0, 16);
  const iv = random.subarray(16);
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
