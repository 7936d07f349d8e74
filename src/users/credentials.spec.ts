import {
  displayNameProblem,
  emailLookupProblem,
  emailProblem,
  normalizeEmail,
  passwordProblem,
} from './credentials';

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

  it.each([
    ['U+200B zero-width space', '\u200B'],
    ['U+200C zero-width non-joiner', '\u200C'],
    ['U+200D zero-width joiner', '\u200D'],
    ['U+2060 word joiner', '\u2060'],
    ['U+FEFF byte-order mark', '\uFEFF'],
    ['U+00AD soft hyphen', '\u00AD'],
    ['U+202E right-to-left override', '\u202E'],
    ['U+2066 left-to-right isolate', '\u2066'],
    ['NUL', '\u0000'],
    ['U+0085 (C1 control)', '\u0085'],
  ])('refuses %s inside an address, for new accounts and look-ups alike', (_label, character) => {
    const email = `ali${character}ce@example.com`;
    expect(emailProblem(email)).toBe('email must not contain control or invisible characters');
    expect(emailLookupProblem(email)).toBe('email must not contain control or invisible characters');
  });

  it('states the 254-character limit', () => {
    expect(emailProblem(`${'a'.repeat(250)}@b.io`)).toBe('email must be at most 254 characters');
  });
});

describe('displayNameProblem', () => {
  it('accepts emoji sequences joined by U+200D', () => {
    expect(displayNameProblem('Ana 👩\u200D💻')).toBeUndefined();
  });

  it.each(['\u202E', '\u2067', '\u0007', '\n'])('refuses %p', (character) => {
    expect(displayNameProblem(`Al${character}ice`)).toMatch(/control or bidirectional/);
  });
});

describe('passwordProblem', () => {
  it('accepts 8 to 128 characters counted after NFKC', () => {
    expect(passwordProblem('kettle-sunrise')).toBeUndefined();
    expect(passwordProblem('😀'.repeat(8))).toBeUndefined();
    expect(passwordProblem('x'.repeat(128) + '')).toBeUndefined();
  });

  it('refuses too short, too long, NUL and common passwords', () => {
    expect(passwordProblem('short1')).toBe('password must be 8 to 128 characters');
    expect(passwordProblem('😀'.repeat(7), 'newPassword')).toBe('newPassword must be 8 to 128 characters');
    expect(passwordProblem('y'.repeat(129))).toMatch(/8 to 128/);
    expect(passwordProblem('kettle\u0000sunrise')).toMatch(/NUL/);
    expect(passwordProblem('password')).toMatch(/common/);
    expect(passwordProblem('Iloveyou1')).toBeDefined();
    expect(passwordProblem('qwertyuiop')).toMatch(/common/);
  });

  it('counts characters after NFKC: the ligature ﬃ becomes three letters', () => {
    expect(passwordProblem('ﬃﬃ12')).toBeUndefined();
  });
});
