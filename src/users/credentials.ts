import { dictionary } from '@zxcvbn-ts/language-common';

export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 128;
export const EMAIL_MAX_LENGTH = 254;

const EMAIL_SHAPE = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+\.[^\s@<>()[\]\\,;:".]{2,}$/u;
const CONTROL = /\p{Cc}/u;

/** The zxcvbn-ts list of common passwords (about 49,000), compared without case. */
const COMMON_PASSWORDS = new Set(
  dictionary['passwords-common'].map((password) => password.normalize('NFKC').toLowerCase()),
);

/** Trimmed, Unicode NFKC, lower-cased without locale rules: the form in which emails are unique. */
export function normalizeEmail(raw: string): string {
  return raw.trim().normalize('NFKC').toLowerCase();
}

/** Why an (already normalised) email is refused, or undefined when it is acceptable. */
export function emailProblem(email: string): string | undefined {
  if (email.length === 0) return 'email is required';
  if (email.length > EMAIL_MAX_LENGTH) return `email must be at most ${EMAIL_MAX_LENGTH} characters`;
  if (CONTROL.test(email) || !EMAIL_SHAPE.test(email)) return 'email must be an email address';
  return undefined;
}

export function normalizePassword(raw: string): string {
  return raw.normalize('NFKC');
}

/** Why a password is refused, or undefined. Length counts characters (code points) after NFKC. */
export function passwordProblem(raw: string): string | undefined {
  const password = normalizePassword(raw);
  if (password.includes('\u0000')) return 'password must not contain NUL characters';
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH) return `password must be at least ${PASSWORD_MIN_LENGTH} characters`;
  if (length > PASSWORD_MAX_LENGTH) return `password must be at most ${PASSWORD_MAX_LENGTH} characters`;
  if (COMMON_PASSWORDS.has(password.toLowerCase())) return 'password is too common; choose another';
  return undefined;
}
