import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import express, { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import type { Server } from 'node:http';
import type { AppConfig } from '../config/app-config';
import { AppError } from './app-error';
import { ErrorBody, ErrorCode } from './error-codes';
import { createHttpLogger } from './logger';
import type { Logger } from 'pino';

const METHODS_WITH_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** The contract takes JSON only: any other declared body type is refused before parsing. */
function requireJson(req: Request, _res: Response, next: NextFunction): void {
  if (METHODS_WITH_BODY.has(req.method) && hasBody(req) && !req.is('application/json')) {
    next(new AppError('UNSUPPORTED_MEDIA_TYPE'));
    return;
  }
  next();
}

const BODY_PARSER_CODES: Record<string, ErrorCode> = {
  'entity.parse.failed': 'MALFORMED_JSON',
  'entity.too.large': 'PAYLOAD_TOO_LARGE',
  'encoding.unsupported': 'UNSUPPORTED_MEDIA_TYPE',
  'charset.unsupported': 'UNSUPPORTED_MEDIA_TYPE',
};

/** express.json, with its failures turned into contract errors before Nest's generic mapping sees them. */
function jsonBody(limit: number) {
  const parse = express.json({ limit, strict: true, type: 'application/json' });
  return (req: Request, res: Response, next: NextFunction): void =>
    parse(req, res, (error?: unknown) => {
      const type = (error as { type?: string } | undefined)?.type;
      next(error ? new AppError((type && BODY_PARSER_CODES[type]) || 'VALIDATION_FAILED') : undefined);
    });
}

/** The deepest nesting a body may have; deeper ones are refused before anything walks them. */
export const MAX_JSON_DEPTH = 32;

/** Whether a parsed body nests deeper than `limit`, walked without recursion so no depth can overflow it. */
function nestsDeeperThan(value: unknown, limit: number): boolean {
  const pending: [unknown, number][] = [[value, 0]];
  while (pending.length > 0) {
    const [item, depth] = pending.pop()!;
    if (typeof item !== 'object' || item === null) continue;
    if (depth + 1 > limit) return true;
    for (const child of Object.values(item)) pending.push([child, depth + 1]);
  }
  return false;
}

function refuseDeepNesting(req: Request, _res: Response, next: NextFunction): void {
  next(
    nestsDeeperThan(req.body, MAX_JSON_DEPTH)
      ? new AppError('MALFORMED_JSON', `JSON nested deeper than ${MAX_JSON_DEPTH} levels is not accepted`)
      : undefined,
  );
}

const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function prototypeKeyIn(value: unknown, path: string): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, child] of Object.entries(value)) {
    const here = path ? `${path}.${key}` : key;
    if (PROTOTYPE_KEYS.has(key)) return here;
    const nested = prototypeKeyIn(child, here);
    if (nested) return nested;
  }
  return undefined;
}

/**
 * JSON.parse keeps `__proto__` as an own key, and the DTO transform drops such keys silently instead of
 * refusing them as unknown fields; refusing them here keeps them away from any later object merge.
 */
function refusePrototypeKeys(req: Request, _res: Response, next: NextFunction): void {
  const field = prototypeKeyIn(req.body, '');
  next(field ? AppError.validation(field, `${field} is not allowed`) : undefined);
}

/** Responses from the API carry credentials or personal data: no cache may keep them. */
function noStore(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader('Cache-Control', 'no-store');
  next();
}

/** Platform concerns shared by `main.ts` and the e2e tests: logging, headers, CORS, body parsing, timeouts. */
export function applyPlatform(app: INestApplication, config: AppConfig, logger: Logger): void {
  const expressApp = app as NestExpressApplication;
  expressApp.set('trust proxy', config.http.trustProxy);
  expressApp.disable('x-powered-by');
  app.use(createHttpLogger(logger));
  app.use(
    helmet({
      contentSecurityPolicy: {
        directives: {
          // Swagger UI at /docs runs its own inline bootstrap script.
          scriptSrc: ["'self'", "'unsafe-inline'"],
          upgradeInsecureRequests: config.http.publicUrl.startsWith('https:') ? [] : null,
        },
      },
    }),
  );
  app.enableCors({
    origin: config.http.corsOrigins.length > 0 ? config.http.corsOrigins : false,
    credentials: true,
    methods: ['GET', 'POST', 'PATCH', 'DELETE'],
    allowedHeaders: ['Content-Type', 'Authorization', 'X-CSRF-Token', 'X-Request-Id'],
    exposedHeaders: ['X-Request-Id', 'Retry-After', 'WWW-Authenticate'],
    maxAge: 600,
  });
  app.use('/api', noStore);
  app.use(requireJson);
  app.use(jsonBody(config.http.bodyLimitBytes));
  app.use(refuseDeepNesting);
  app.use(refusePrototypeKeys);
}

/** Slow clients are cut off, and header overflows get the contract's error body rather than a bare 431. */
export function hardenServer(server: Server): void {
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
    const status = tooLarge ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const body: Omit<ErrorBody, 'code'> & { code: string } = {
      statusCode: status,
      code: tooLarge ? 'HEADERS_TOO_LARGE' : status === 408 ? 'REQUEST_TIMEOUT' : 'BAD_REQUEST',
      message: tooLarge ? 'Request headers are too large' : 'The request could not be read',
      requestId: '',
    };
    const json = JSON.stringify(body);
    socket.end(
      `HTTP/1.1 ${status} ${tooLarge ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
    );
  });
}
