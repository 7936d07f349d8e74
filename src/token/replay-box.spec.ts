import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { open, seal } from './replay-box';

describe('replay box', () => {
  it('opens only with the token it was sealed under', () => {
    const box = seal('token-a', '{"x":1}');
    expect(open('token-a', box)).toBe('{"x":1}');
    expect(open('token-b', box)).toBeUndefined();
    expect(open('token-a', `${box.slice(0, -2)}AA`)).toBeUndefined();
  });

  it('opens a box sealed with node:crypto HKDF, as the build before this one sealed them', () => {
    const token = randomBytes(32).toString('base64url');
    const salt = randomBytes(16);
    const iv = randomBytes(12);
    const key = Buffer.from(hkdfSync('sha256', Buffer.from(token), salt, 'refresh-replay-v1', 32));
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const body = Buffer.concat([cipher.update('{"x":2}', 'utf8'), cipher.final()]);
    const box = [salt, iv, cipher.getAuthTag(), body].map((part) => part.toString('base64url')).join('.');
    expect(open(token, box)).toBe('{"x":2}');
  });
});
