import type { paths } from './schema.js';

/** The JSON body a route answers with `status`, read from the generated contract. */
type Body<
  Path extends keyof paths,
  Method extends keyof paths[Path],
  Status extends number,
> = paths[Path][Method] extends {
  responses: { [S in Status]: { content: { 'application/json': infer Json } } };
}
  ? Json
  : never;

/** The JSON body a route takes. */
type Payload<Path extends keyof paths, Method extends keyof paths[Path]> = paths[Path][Method] extends {
  requestBody?: { content: { 'application/json': infer Json } };
}
  ? Json
  : never;

export type User = Body<'/api/me', 'get', 200>['user'];
export type ErrorBody = Body<'/api/me', 'get', 401>;
export type ErrorCode = ErrorBody['code'];
export type Me = Body<'/api/me', 'get', 200>;
export type SignIn = Body<'/api/me/sessions', 'get', 200>[number];
export type MfaMethod = Extract<
  Body<'/api/auth/session/login', 'post', 200>,
  { mfaRequired: true }
>['methods'][number];
export type TokenResponse = Exclude<Body<'/api/auth/token/login', 'post', 200>, { mfaRequired: true }>;
export type SessionLoginResponse = Exclude<
  Body<'/api/auth/session/login', 'post', 200>,
  { mfaRequired: true }
>;
export type SessionInfo = Body<'/api/auth/session', 'get', 200>;
export type TotpEnrolment = Body<'/api/me/mfa/totp', 'post', 200>;
export type RecoveryCodes = Body<'/api/me/mfa/totp/confirm', 'post', 200>;

export type RegisterInput = Payload<'/api/auth/register', 'post'>;
export type ChangePasswordInput = Payload<'/api/me/password', 'post'>;
export type DeleteAccountInput = Payload<'/api/me', 'delete'>;
export type ResetPasswordInput = Payload<'/api/auth/password/reset', 'post'>;
export type ChangeEmailInput = Payload<'/api/me/email', 'post'>;
export type DisableTotpInput = Payload<'/api/me/mfa/totp', 'delete'>;

export interface Credentials {
  email: string;
  password: string;
}

/** What a login answers: signed in, or a second factor to ask for (then `verifyMfa`). */
export type LoginResult =
  { status: 'signed-in'; user: User } | { status: 'mfa-required'; mfaToken: string; methods: MfaMethod[] };
