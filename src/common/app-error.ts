import { ERROR_CODES, ErrorCode, ErrorDetail } from './error-codes';

/**
 * The one error business code throws: a contract code, a client-safe message, optional field details and
 * response headers (`Retry-After`, `WWW-Authenticate`). The global filter turns it into the error body.
 */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details?: ErrorDetail[],
    readonly headers: Record<string, string> = {},
  ) {
    super(message ?? ERROR_CODES[code][1]);
    this.name = 'AppError';
  }

  get status(): number {
    return ERROR_CODES[this.code][0];
  }

  static validation(field: string, message: string): AppError {
    return new AppError('VALIDATION_FAILED', 'The request is not valid', [{ field, message }]);
  }
}

/** Marks a failure of PostgreSQL or Redis, so it becomes 503 rather than 500. */
export class BackendUnavailableError extends Error {
  constructor(
    readonly component: 'database' | 'sessionStore' | 'redis',
    cause?: unknown,
  ) {
    super(`${component} unavailable`, { cause });
    this.name = 'BackendUnavailableError';
  }
}
