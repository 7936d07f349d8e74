import { LoggerService } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import pino, { Logger } from 'pino';

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.currentPassword',
  '*.newPassword',
  '*.refreshToken',
  '*.accessToken',
];

export function createRootLogger(level: string): Logger {
  return pino({ level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } });
}

declare module 'http' {
  interface IncomingMessage {
    /** The request id the client sees in `X-Request-Id` and error bodies; set by the request logger. */
    id?: string;
  }
}

type RequestLogLevel = 'error' | 'info' | 'debug';

/**
 * Request logging with the contract's request id: echoed when the client sent a sane one, else generated.
 * One line per request once it is answered (or abandoned), at debug for successes, info for client errors
 * and error for server errors. pino-http did the same but built a child logger per request, serialising
 * and redacting the request before knowing whether the line would be written: 8% of the CPU of
 * `/health/live` at the usual `warn` level, where no success line is ever written.
 */
export function createHttpLogger(logger: Logger) {
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const sent = req.headers['x-request-id'];
    const id = typeof sent === 'string' && SANE_REQUEST_ID.test(sent) ? sent : randomUUID();
    req.id = id;
    res.setHeader('X-Request-Id', id);
    const started = Date.now();
    const done = (): void => {
      res.off('finish', done);
      res.off('close', done);
      const level: RequestLogLevel =
        res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'info' : 'debug';
      if (!logger.isLevelEnabled(level)) return;
      logger[level](
        {
          req: { id, method: req.method, url: req.url },
          res: { statusCode: res.statusCode },
          responseTime: Date.now() - started,
        },
        res.writableFinished ? 'request completed' : 'request aborted',
      );
    };
    res.on('finish', done);
    res.on('close', done);
    next();
  };
}

/** Routes Nest's own log calls into pino, so every line is structured. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, ...rest: unknown[]): void {
    this.write('info', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.write('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.write('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.write('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.write('trace', message, rest);
  }

  private write(
    level: 'info' | 'error' | 'warn' | 'debug' | 'trace',
    message: unknown,
    rest: unknown[],
  ): void {
    const context = typeof rest[rest.length - 1] === 'string' ? (rest[rest.length - 1] as string) : undefined;
    if (message !== null && typeof message === 'object') {
      const text = rest.find((item, index) => typeof item === 'string' && index < rest.length - 1);
      this.logger[level]({ context, ...message }, typeof text === 'string' ? text : '');
    } else {
      this.logger[level]({ context }, String(message));
    }
  }
}
