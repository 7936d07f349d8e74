import type { ErrorBody, ErrorCode } from './types.js';

/** A non-2xx answer of the service, in the contract's one error shape. */
export class AuthClientError extends Error {
  override readonly name = 'AuthClientError';
  readonly status: number;
  readonly code: ErrorCode;
  readonly requestId?: string;
  readonly details?: { field: string; message: string }[];
  /** Seconds to wait before trying again (`Retry-After`), on RATE_LIMITED and SERVICE_UNAVAILABLE. */
  readonly retryAfter?: number;

  constructor(status: number, body: Partial<ErrorBody>, retryAfter?: number) {
    super(body.message ?? `HTTP ${status}`);
    this.status = status;
    // A body without a code came from something in front of the service (a proxy's 502): the contract
    // names that INTERNAL_ERROR or, for a gateway that lost the service, SERVICE_UNAVAILABLE.
    this.code =
      body.code ??
      (status === 502 || status === 503 || status === 504 ? 'SERVICE_UNAVAILABLE' : 'INTERNAL_ERROR');
    this.requestId = body.requestId;
    this.details = body.details;
    this.retryAfter = retryAfter;
  }

  /** Reads the error from a response whose body has not been read yet. */
  static async from(response: Response): Promise<AuthClientError> {
    return AuthClientError.of(response, await errorBodyOf(response));
  }

  /** The error of a response whose body was already read (by openapi-fetch) into `body`. */
  static of(response: Response, body: unknown): AuthClientError {
    const fields = typeof body === 'object' && body !== null ? (body as Partial<ErrorBody>) : {};
    return new AuthClientError(response.status, fields, retryAfterOf(response));
  }
}

/** The error body of a response, read from a clone so the response stays readable. */
export async function errorBodyOf(response: Response): Promise<Partial<ErrorBody>> {
  if (!response.headers.get('content-type')?.includes('json')) {
    return { requestId: response.headers.get('x-request-id') ?? undefined };
  }
  try {
    return (await response.clone().json()) as Partial<ErrorBody>;
  } catch {
    return {};
  }
}

function retryAfterOf(response: Response): number | undefined {
  const header = response.headers.get('retry-after');
  const seconds = header === null ? NaN : Number(header);
  return Number.isFinite(seconds) ? seconds : undefined;
}
