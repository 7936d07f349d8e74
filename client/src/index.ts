export { AuthClient, createAuthClient } from './auth-client.js';
export type {
  AuthApi,
  AuthClientOptions,
  DeviceTokenStorage,
  RefreshTokenStorage,
  SignedOutReason,
} from './auth-client.js';
export { AuthClientError } from './errors.js';
export type {
  ChangeEmailInput,
  ChangePasswordInput,
  Credentials,
  DeleteAccountInput,
  DisableTotpInput,
  ErrorCode,
  LoginResult,
  Me,
  RecoveryCodes,
  RegisterInput,
  ResetPasswordInput,
  SignIn,
  TotpEnrolment,
  User,
} from './types.js';
export type { paths } from './schema.js';
