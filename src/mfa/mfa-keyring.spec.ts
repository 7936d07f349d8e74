import { randomBytes } from 'node:crypto';
import { keyIdOf, MfaKeyring } from './mfa-keyring';

describe('MfaKeyring', () => {
  const secret = randomBytes(20);
  const userId = '00000000-0000-4000-8000-000000000001';

  it('opens what it sealed, and the ciphertext does not contain the secret', () => {
    const keyring = new MfaKeyring(randomBytes(32));
    const sealed = keyring.seal(secret, userId);
    expect(sealed.keyId).toBe(keyring.currentKeyId);
    expect(Buffer.from(sealed.ciphertext).includes(secret)).toBe(false);
    expect(keyring.open(sealed, userId)).toEqual(secret);
  });

  it('refuses another user id and an altered ciphertext', () => {
    const keyring = new MfaKeyring(randomBytes(32));
    const sealed = keyring.seal(secret, userId);
    expect(() => keyring.open(sealed, '00000000-0000-4000-8000-000000000002')).toThrow();
    const [iv, tag, body] = sealed.ciphertext.split('.');
    const flipped = Buffer.from(body, 'base64url');
    flipped[0] ^= 1;
    expect(() =>
      keyring.open({ ...sealed, ciphertext: [iv, tag, flipped.toString('base64url')].join('.') }, userId),
    ).toThrow();
  });

  it('after a rotation opens old ciphertexts with the previous key and seals under the new one', () => {
    const oldKey = randomBytes(32);
    const newKey = randomBytes(32);
    const sealedBefore = new MfaKeyring(oldKey).seal(secret, userId);
    const rotated = new MfaKeyring(newKey, [oldKey]);
    expect(rotated.open(sealedBefore, userId)).toEqual(secret);
    expect(rotated.seal(secret, userId).keyId).toBe(keyIdOf(newKey));
    expect(() => new MfaKeyring(newKey).open(sealedBefore, userId)).toThrow(/not configured/);
  });
});
