import { LoggerService } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import pino, { DestinationStream, Logger } from 'pino';
import pinoHttp, { HttpLogger } from 'pino-http';
import type PinoPretty from 'pino-pretty';

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

const MAX_CAUSE_DEPTH = 3;

/** The identifiers PostgreSQL names in an error; never a value. */
const DATABASE_ERROR_FIELDS = ['code', 'severity', 'schema', 'table', 'column', 'constraint', 'routine'];

function isDatabaseError(error: Error): boolean {
  const fields = error as unknown as Record<string, unknown>;
  return (
    'query' in fields || 'driverError' in fields || (typeof fields.severity === 'string' && 'code' in fields)
  );
}

/**
 * How every error reaches the log: its type, message, code and stack, and for a failed database statement
 * the statement's text and the identifiers PostgreSQL names. Never the statement's parameters (a new bcrypt
 * hash, a refresh token's hash, a session id), nor pg's `detail` ("Key (email)=(…) already exists") or
 * `where`, and values quoted in a database message (`invalid input syntax for type uuid: "…"`) are cut.
 * Other properties of an error are left out: a library may hang anything on one.
 */
export function serializeError(error: unknown, depth = 0): Record<string, unknown> {
  if (!(error instanceof Error)) return { type: typeof error };
  const database = isDatabaseError(error);
  const message = database ? error.message.replace(/"[^"]*"/g, '"…"') : error.message;
  const frames = (error.stack ?? '').split('\n').filter((line) => /^\s+at /.test(line));
  const fields = error as unknown as Record<string, unknown>;
  const serialized: Record<string, unknown> = {
    type: error.constructor.name,
    message,
    stack: [`${error.name}: ${message}`, ...frames].join('\n'),
  };
  if (typeof fields.code === 'string' || typeof fields.code === 'number') serialized.code = fields.code;
  if (database) {
    for (const field of DATABASE_ERROR_FIELDS) {
      if (typeof fields[field] === 'string') serialized[field] = fields[field];
    }
    if (typeof fields.query === 'string') serialized.query = fields.query;
  }
  if (error.cause !== undefined && depth < MAX_CAUSE_DEPTH) {
    serialized.cause = serializeError(error.cause, depth + 1);
  }
  return serialized;
}

const SERIALIZERS = { err: serializeError, error: serializeError };

/** The one field that carries the request id, in every log line about a request (the body's name too). */
export const REQUEST_ID_FIELD = 'requestId';

/** Where the error filter leaves a failed request's contract code for the request's log line. */
export const ERROR_CODE_LOCAL = 'errorCode';

/**
 * JSON lines, or with `pretty` one readable line per entry for a developer's terminal. pino-pretty is a
 * development dependency: where it is not installed (a production image) the lines stay JSON.
 */
export function createRootLogger(level: string, pretty = false): Logger {
  const options = {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    serializers: SERIALIZERS,
  };
  const stream = pretty ? prettyStream() : undefined;
  const logger = stream ? pino(options, stream) : pino(options);
  if (pretty && !stream) logger.warn('LOG_PRETTY is on but pino-pretty is not installed: logging JSON');
  return logger;
}

function prettyStream(): DestinationStream | undefined {
  let pretty: typeof PinoPretty;
  try {
    pretty = createRequire(__filename)('pino-pretty') as typeof PinoPretty;
  } catch {
    return undefined;
  }
  return pretty({
    sync: true,
    singleLine: true,
    colorize: process.stdout.isTTY === true,
    translateTime: 'SYS:HH:MM:ss.l',
    // The request line's message already says method, path, status and code.
    ignore: 'pid,hostname,req,res,responseTime',
  });
}

type RequestLogLevel = 'error' | 'info' | 'debug';

/**
 * Request logging with the contract's request id: echoed when the client sent a sane one, else generated.
 * Set up to do little for a line that is not written (at the usual `warn` level, every success and client
 * error): the level is decided first and a disabled one is `silent`, so no message or object is built;
 * the serializers read the raw request and response instead of pino-http's wrapped copies; and the error
 * code is added to the line itself rather than through a per-request child logger.
 */
export function createHttpLogger(logger: Logger): HttpLogger {
  return pinoHttp({
    logger,
    // Every line logged about a request carries its id as `requestId`, never as `req.id` or `reqId`.
    quietReqLogger: true,
    customAttributeKeys: { reqId: REQUEST_ID_FIELD },
    wrapSerializers: false,
    customSuccessObject: (_req, res, line: object) => withErrorCode(res, line),
    customErrorObject: (_req, res, _error, line: object) => withErrorCode(res, line),
    customSuccessMessage: (req, res, responseTime) => requestLine(req, res, responseTime),
    customErrorMessage: (req, res) => requestLine(req, res),
    genReqId(req: IncomingMessage, res: ServerResponse) {
      const sent = req.headers['x-request-id'];
      const id = typeof sent === 'string' && SANE_REQUEST_ID.test(sent) ? sent : randomUUID();
      res.setHeader('X-Request-Id', id);
      return id;
    },
    customLogLevel(_req, res, error) {
      const level: RequestLogLevel =
        error || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'info' : 'debug';
      return logger.isLevelEnabled(level) ? level : 'silent';
    },
    serializers: {
      ...SERIALIZERS,
      req: (req: IncomingMessage) => ({ method: req.method, url: req.url }),
      res: (res: ServerResponse) => ({ statusCode: res.statusCode }),
    },
  });
}

function errorCodeOf(res: ServerResponse): string | undefined {
  const code = (res as ServerResponse & { locals?: Record<string, unknown> }).locals?.[ERROR_CODE_LOCAL];
  return typeof code === 'string' ? code : undefined;
}

function withErrorCode(res: ServerResponse, line: object): object {
  const code = errorCodeOf(res);
  return code === undefined ? line : { ...line, code };
}

function requestLine(req: IncomingMessage, res: ServerResponse, responseTime?: number): string {
  const parts = [req.method, req.url, String(res.statusCode), errorCodeOf(res)];
  if (responseTime !== undefined) parts.push(`${responseTime} ms`);
  return parts.filter(Boolean).join(' ');
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
    if (message instanceof Error) {
      this.logger[level]({ context, err: message }, message.constructor.name);
    } else if (message !== null && typeof message === 'object') {
      const text = rest.find((item, index) => typeof item === 'string' && index < rest.length - 1);
      this.logger[level]({ context, ...message }, typeof text === 'string' ? text : '');
    } else {
      this.logger[level]({ context }, String(message));
    }
  }
}
