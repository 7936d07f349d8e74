import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AppError } from './app-error';
import { asBackendUnavailable } from './backend-errors';
import { ERROR_CODES, ErrorBody, ErrorCode } from './error-codes';
import { ERROR_CODE_LOCAL, REQUEST_ID_FIELD } from './logger';

const STATUS_CODES: Partial<Record<number, ErrorCode>> = {
  400: 'VALIDATION_FAILED',
  401: 'AUTHENTICATION_REQUIRED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'NOT_FOUND',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'RATE_LIMITED',
  431: 'HEADERS_TOO_LARGE',
  503: 'SERVICE_UNAVAILABLE',
};

/** The one place where any error, ours or the framework's, becomes the contract's error body. */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('HTTP');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<Request>();
    const response = http.getResponse<Response>();
    const error = this.toAppError(exception, request);

    if (response.headersSent) {
      response.end();
      return;
    }
    // express-session sets its cookie as the response goes out: a request that failed (a store or the
    // database down half-way through a login) must not hand out a session the client was told it lacks.
    if (error.status >= 500 && request.session) request.session = undefined as unknown as Request['session'];
    const body: ErrorBody = {
      statusCode: error.status,
      code: error.code,
      message: error.message,
      requestId: typeof request.id === 'string' ? request.id : '',
      ...(error.details ? { details: error.details } : {}),
    };
    response.locals[ERROR_CODE_LOCAL] = error.code;
    response.setHeader('Cache-Control', 'no-store');
    for (const [name, value] of Object.entries(error.headers)) response.setHeader(name, value);
    response.status(error.status).json(body);
  }

  private toAppError(exception: unknown, request: Request): AppError {
    if (exception instanceof AppError) return exception;
    if (exception instanceof HttpException) {
      const code = STATUS_CODES[exception.getStatus()];
      if (code) return new AppError(code);
    }
    const unavailable = asBackendUnavailable(exception);
    if (unavailable) {
      this.logger.warn(
        { [REQUEST_ID_FIELD]: request.id, component: unavailable.component, err: unavailable.cause },
        'backend unavailable',
      );
      return new AppError(
        'SERVICE_UNAVAILABLE',
        `The ${unavailable.component === 'database' ? 'database' : 'session store'} is unavailable; try again shortly`,
      );
    }
    this.logger.error({ [REQUEST_ID_FIELD]: request.id, err: exception }, 'unhandled error');
    return new AppError('INTERNAL_ERROR', ERROR_CODES.INTERNAL_ERROR[1]);
  }
}
