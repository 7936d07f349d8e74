import { emailProblem, normalizeEmail, passwordProblem } from './credentials';

describe('normalizeEmail', () => {
  it('trims, applies NFKC and lower-cases', () => {
    expect(normalizeEmail('  Ａlice@Example.COM ')).toBe('alice@example.com');
  });

  it('lower-cases without locale rules (Turkish dotted I stays İ → i̇)', () => {
    expect(normalizeEmail('İ@x.io')).toBe('i̇@x.io');
  });
});

describe('emailProblem', () => {
  it.each(['a@b.co', 'first.last+tag@sub.example.org'])('accepts %s', (email) => {
    expect(emailProblem(email)).toBeUndefined();
  });

  it.each(['', 'plain', 'a@b', 'a b@c.io', 'a@b.c', `${'a'.repeat(250)}@b.io`, 'a\r\n@b.io'])(
    'refuses %p',
    (email) => {
      expect(emailProblem(email)).toBeDefined();
    },
  );
});

describe('passwordProblem', () => {
  it('accepts 8 to 128 characters counted after NFKC', () => {
    expect(passwordProblem('kettle-sunrise')).toBeUndefined();
    expect(passwordProblem('😀'.repeat(8))).toBeUndefined();
    expect(passwordProblem('x'.repeat(128) + '')).toBeUndefined();
  });

  it('refuses too short, too long, NUL and common passwords', () => {
    expect(passwordProblem('short1')).toMatch(/at least 8/);
    expect(passwordProblem('😀'.repeat(7))).toMatch(/at least 8/);
    expect(passwordProblem('y'.repeat(129))).toMatch(/at most 128/);
    expect(passwordProblem('kettle\u0000sunrise')).toMatch(/NUL/);
    expect(passwordProblem('password')).toMatch(/common/);
    expect(passwordProblem('Iloveyou1')).toBeDefined();
    expect(passwordProblem('qwertyuiop')).toMatch(/common/);
  });

  it('counts characters after NFKC: the ligature ﬃ becomes three letters', () => {
    expect(passwordProblem('ﬃﬃ12')).toBeUndefined();
  });
});
