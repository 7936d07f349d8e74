import { dictionary } from '@zxcvbn-ts/language-common';

export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 128;
export const EMAIL_MAX_LENGTH = 254;

const EMAIL_SHAPE = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+\.[^\s@<>()[\]\\,;:".]{2,}$/u;
/**
 * Characters no email may hold: controls (C0, C1, NUL), invisible format characters (zero-width spaces and
 * joiners, word joiner, byte-order mark, soft hyphen, bidirectional embeddings, overrides and isolates),
 * and line separators. Two addresses differing only by one of these would look like one account.
 */
const EMAIL_FORBIDDEN = /[\p{Cc}\p{Cf}\u2028\u2029]/u;
/** Characters a display name may not hold: controls, and the bidirectional embeddings, overrides, isolates. */
const DISPLAY_NAME_FORBIDDEN = /[\p{Cc}\u202A-\u202E\u2066-\u2069]/u;
export const DISPLAY_NAME_MAX_LENGTH = 100;

/** The zxcvbn-ts list of common passwords (about 49,000), compared without case. */
const COMMON_PASSWORDS = new Set(
  dictionary['passwords-common'].map((password) => password.normalize('NFKC').toLowerCase()),
);

/** Trimmed, Unicode NFKC, lower-cased without locale rules: the form in which emails are unique. */
export function normalizeEmail(raw: string): string {
  return raw.trim().normalize('NFKC').toLowerCase();
}

/**
 * Why an email given to look an account up (login, the admin filter) is refused: it could name no account,
 * and saying so with VALIDATION_FAILED reveals nothing about which accounts exist.
 */
export function emailLookupProblem(raw: string, field = 'email'): string | undefined {
  if (EMAIL_FORBIDDEN.test(raw)) return `${field} must not contain control or invisible characters`;
  if (normalizeEmail(raw).length > EMAIL_MAX_LENGTH) {
    return `${field} must be at most ${EMAIL_MAX_LENGTH} characters`;
  }
  return undefined;
}

/** Why an email is refused for a new account, or undefined when it is acceptable. */
export function emailProblem(raw: string, field = 'email'): string | undefined {
  const lookup = emailLookupProblem(raw, field);
  if (lookup) return lookup;
  const email = normalizeEmail(raw);
  if (email.length === 0) return `${field} is required`;
  if (!EMAIL_SHAPE.test(email)) {
    return `${field} must be an email address of at most ${EMAIL_MAX_LENGTH} characters`;
  }
  return undefined;
}

export function displayNameProblem(raw: string, field = 'displayName'): string | undefined {
  if (DISPLAY_NAME_FORBIDDEN.test(raw)) {
    return `${field} must not contain control or bidirectional override characters`;
  }
  if ([...raw].length > DISPLAY_NAME_MAX_LENGTH) {
    return `${field} must be at most ${DISPLAY_NAME_MAX_LENGTH} characters`;
  }
  return undefined;
}

export function normalizePassword(raw: string): string {
  return raw.normalize('NFKC');
}

const PASSWORD_LENGTH = `${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters`;

/**
 * Why a password presented to be checked (login, current password) is refused before any check: one
 * longer than any password can be. Shorter ones go to the check, which answers as for a wrong password.
 */
export function presentedPasswordProblem(raw: string, field = 'password'): string | undefined {
  if ([...normalizePassword(raw)].length > PASSWORD_MAX_LENGTH) {
    return `${field} must be ${PASSWORD_LENGTH}`;
  }
  return undefined;
}

/** Why a new password is refused, or undefined. Length counts characters (code points) after NFKC. */
export function passwordProblem(raw: string, field = 'password'): string | undefined {
  const password = normalizePassword(raw);
  if (password.includes('\u0000')) return `${field} must not contain NUL characters`;
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH || length > PASSWORD_MAX_LENGTH)
    return `${field} must be ${PASSWORD_LENGTH}`;
  if (COMMON_PASSWORDS.has(password.toLowerCase())) return `${field} is too common; choose another`;
  return undefined;
}
