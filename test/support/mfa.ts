import { Secret, TOTP } from 'otpauth';
import request, { Response } from 'supertest';
import type { Caller } from './clients';

/** The TOTP code an authenticator app would show at `timeMs`, computed here, not by the service. */
export function totpAt(secret: string, timeMs: number): string {
  return new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({
    timestamp: timeMs,
  });
}

export interface EnrolledFactor {
  secret: string;
  otpauthUrl: string;
  recoveryCodes: string[];
}

/** Enrols and confirms a TOTP factor for a signed-in caller, with a code for `timeMs` (the service's now). */
export async function enrolSecondFactor(
  url: string,
  caller: Caller,
  password: string,
  timeMs = Date.now(),
): Promise<EnrolledFactor> {
  const started = await caller.auth(request(url).post('/api/me/mfa/totp')).send({ password });
  expect(started.status).toBe(200);
  const { secret, otpauthUrl } = started.body as { secret: string; otpauthUrl: string };
  const confirmed = await caller
    .auth(request(url).post('/api/me/mfa/totp/confirm'))
    .send({ code: totpAt(secret, timeMs) });
  expect(confirmed.status).toBe(200);
  return { secret, otpauthUrl, recoveryCodes: (confirmed.body as { recoveryCodes: string[] }).recoveryCodes };
}

/** A login that passed its password and answered `mfaRequired`; returns the mfaToken. */
export async function loginChallenge(
  url: string,
  user: { email: string; password: string },
  method: 'session' | 'token',
  extra: Record<string, unknown> = {},
): Promise<string> {
  const response = await request(url)
    .post(`/api/auth/${method}/login`)
    .send({ email: user.email, password: user.password, ...extra });
  expect(response.status).toBe(200);
  expect(response.body).toEqual({
    mfaRequired: true,
    mfaToken: expect.any(String),
    methods: ['totp', 'recovery_code'],
  });
  expect(response.headers['set-cookie']).toBeUndefined();
  return (response.body as { mfaToken: string }).mfaToken;
}

/**
 * Many pending logins of one user, one after another: password logins in parallel would meet the account's
 * limit (every check is counted before it runs, and more than LOGIN_MAX_FAILURES in flight wait).
 */
export async function loginChallenges(
  url: string,
  user: { email: string; password: string },
  count: number,
  method: (index: number) => 'session' | 'token' = () => 'token',
): Promise<string[]> {
  const tokens: string[] = [];
  for (let i = 0; i < count; i += 1) tokens.push(await loginChallenge(url, user, method(i)));
  return tokens;
}

export function verifyMfa(
  url: string,
  mfaToken: string,
  code: string,
  extra: Record<string, unknown> = {},
): Promise<Response> {
  return request(url)
    .post('/api/auth/mfa/verify')
    .send({ mfaToken, code, ...extra });
}

/** The claims of a JWT, read without verifying it (the service verified it when it answered). */
export function jwtClaims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
}
