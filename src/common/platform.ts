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

const BODY_PARSER_CODES: Record<string, ErrorCode> = {
  'entity.parse.failed': 'MALFORMED_JSON',
  'entity.too.large': 'PAYLOAD_TOO_LARGE',
  'encoding.unsupported': 'UNSUPPORTED_MEDIA_TYPE',
  'charset.unsupported': 'UNSUPPORTED_MEDIA_TYPE',
};

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
 * The request body, in one middleware that a request without one (every GET, most of the traffic) leaves
 * at once: only JSON is taken (any other declared type is refused before parsing), express.json's failures
 * become contract errors before Nest's generic mapping sees them, bodies nested deeper than MAX_JSON_DEPTH
 * are refused as MALFORMED_JSON, and keys named `__proto__`,
 * `constructor` or `prototype` are refused: JSON.parse keeps `__proto__` as an own key, and the DTO
 * transform would drop it silently instead of refusing it as an unknown field.
 */
function jsonBody(limit: number) {
  const parse = express.json({ limit, strict: true, type: 'application/json' });
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!METHODS_WITH_BODY.has(req.method) || !hasBody(req)) {
      next();
      return;
    }
    if (!req.is('application/json')) {
      next(new AppError('UNSUPPORTED_MEDIA_TYPE'));
      return;
    }
    parse(req, res, (error?: unknown) => {
      if (error) {
        const type = (error as { type?: string }).type;
        next(new AppError((type && BODY_PARSER_CODES[type]) || 'VALIDATION_FAILED'));
        return;
      }
      // Measured first: the key walk below recurses, and no depth may overflow it.
      if (nestsDeeperThan(req.body, MAX_JSON_DEPTH)) {
        next(
          new AppError('MALFORMED_JSON', `JSON nested deeper than ${MAX_JSON_DEPTH} levels is not accepted`),
        );
        return;
      }
      const field = prototypeKeyIn(req.body, '');
      next(field ? AppError.validation(field, `${field} is not allowed`) : undefined);
    });
  };
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
  // Every API answer is no-store and the rest is tiny: an ETag (a SHA-1 of each body) would serve nobody.
  expressApp.set('etag', false);
  app.use(createHttpLogger(logger));
  app.use(
    helmet({
      contentSecurityPolicy: {
        directives: {
          // No inline script anywhere: Swagger UI at /docs runs files of this origin only (src/openapi).
          scriptSrc: ["'self'"],
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
  app.use(jsonBody(config.http.bodyLimitBytes));
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
