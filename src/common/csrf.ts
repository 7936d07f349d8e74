import type { Request } from 'express';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { AppConfig } from '../config/app-config';
import { AppError } from './app-error';

export const CSRF_HEADER = 'x-csrf-token';
const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function isUnsafeMethod(method: string): boolean {
  return UNSAFE_METHODS.has(method.toUpperCase());
}

export function newCsrfToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The request comes from a page this service trusts: no `Sec-Fetch-Site: cross-site`, and an `Origin`, when
 * sent, that is in CORS_ORIGINS or is the service's own (PUBLIC_URL, or the origin the request was sent to).
 */
export function assertTrustedOrigin(request: Request, config: AppConfig): void {
  if (request.headers['sec-fetch-site'] === 'cross-site') throw new AppError('CSRF_FAILED');
  const origin = request.headers.origin;
  if (origin === undefined) return;
  const own = [new URL(config.http.publicUrl).origin, `${request.protocol}://${request.get('host') ?? ''}`];
  if (!config.http.corsOrigins.includes(origin) && !own.includes(origin)) throw new AppError('CSRF_FAILED');
}

/** The synchronizer token check: `X-CSRF-Token` must equal the session's token, compared in constant time. */
export function assertCsrfToken(request: Request, expected: string | undefined): void {
  const presented = request.headers[CSRF_HEADER];
  if (typeof presented !== 'string' || !expected) throw new AppError('CSRF_FAILED');
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw new AppError('CSRF_FAILED');
}
