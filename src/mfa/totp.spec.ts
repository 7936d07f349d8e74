import { base32Of, matchingStep, otpauthUrl, stepAt, totpCode } from './totp';

/** RFC 6238 appendix B, SHA-1 rows: the shared secret is the ASCII string "12345678901234567890". */
const RFC_SECRET = Buffer.from('12345678901234567890', 'ascii');
const RFC_VECTORS: [number, string][] = [
  [59, '94287082'],
  [1111111109, '07081804'],
  [1111111111, '14050471'],
  [1234567890, '89005924'],
  [2000000000, '69279037'],
  [20000000000, '65353130'],
];

describe('TOTP (RFC 6238)', () => {
  it.each(RFC_VECTORS)('at T=%p gives the RFC test vector %p', (seconds, expected) => {
    expect(totpCode(RFC_SECRET, stepAt(seconds * 1000), 8)).toBe(expected);
    // Six digits are the same truncation modulo 10^6: the vector's last six digits.
    expect(totpCode(RFC_SECRET, stepAt(seconds * 1000))).toBe(expected.slice(2));
  });

  it('accepts one step of drift either way, and not two', () => {
    const now = 1111111111 * 1000;
    const step = stepAt(now);
    for (const drift of [-1, 0, 1]) {
      expect(matchingStep(RFC_SECRET, totpCode(RFC_SECRET, step + drift), now)).toBe(step + drift);
    }
    for (const drift of [-2, 2]) {
      expect(matchingStep(RFC_SECRET, totpCode(RFC_SECRET, step + drift), now)).toBeUndefined();
    }
    expect(matchingStep(RFC_SECRET, 'abcdef', now)).toBeUndefined();
    expect(matchingStep(RFC_SECRET, '1234567', now)).toBeUndefined();
  });

  it('names the issuer and the account in the otpauth URL', () => {
    const url = new URL(otpauthUrl(RFC_SECRET, 'Auth service', 'alice@example.com'));
    expect(`${url.protocol}//${url.host}`).toBe('otpauth://totp');
    expect(decodeURIComponent(url.pathname)).toBe('/Auth service:alice@example.com');
    expect(url.searchParams.get('issuer')).toBe('Auth service');
    expect(url.searchParams.get('secret')).toBe(base32Of(RFC_SECRET));
    expect(url.searchParams.get('algorithm')).toBe('SHA1');
    expect(url.searchParams.get('digits')).toBe('6');
    expect(url.searchParams.get('period')).toBe('30');
  });
});
