/** The contract's error codes with their HTTP statuses and default messages. */
export const ERROR_CODES = {
  VALIDATION_FAILED: [400, 'The request is not valid'],
  MALFORMED_JSON: [400, 'The request body is not valid JSON'],
  UNSUPPORTED_MEDIA_TYPE: [415, 'Request bodies must be application/json'],
  PAYLOAD_TOO_LARGE: [413, 'The request body is too large'],
  INVALID_CREDENTIALS: [401, 'Invalid email or password'],
  AUTHENTICATION_REQUIRED: [401, 'Authentication is required'],
  SESSION_INVALID: [401, 'The session is invalid or has expired'],
  TOKEN_EXPIRED: [401, 'Access token has expired'],
  TOKEN_INVALID: [401, 'Access token is invalid'],
  TOKEN_REVOKED: [401, 'Access token has been revoked'],
  REFRESH_TOKEN_INVALID: [401, 'Refresh token is invalid or has expired'],
  REFRESH_TOKEN_REUSED: [401, 'Refresh token was already used; the session has been revoked'],
  CSRF_FAILED: [403, 'CSRF check failed'],
  MFA_REQUIRED: [403, 'A second-factor code is required'],
  FORBIDDEN: [403, 'You are not allowed to do this'],
  NOT_FOUND: [404, 'Not found'],
  EMAIL_TAKEN: [409, 'An account with this email already exists'],
  EMAIL_NOT_VERIFIED: [403, 'The email address of this account is not verified yet'],
  LINK_INVALID: [400, 'This link is invalid, expired or already used'],
  MFA_INVALID: [401, 'The second-factor code or the mfaToken is not valid'],
  RATE_LIMITED: [429, 'Too many attempts; try again later'],
  HEADERS_TOO_LARGE: [431, 'Request headers are too large'],
  SERVICE_UNAVAILABLE: [503, 'A backing service is unavailable; try again shortly'],
  INTERNAL_ERROR: [500, 'Internal server error'],
} as const satisfies Record<string, readonly [number, string]>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorDetail {
  field: string;
  message: string;
}

export interface ErrorBody {
  statusCode: number;
  code: ErrorCode;
  message: string;
  requestId: string;
  details?: ErrorDetail[];
}
