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
 * The request comes from a page this service trusts: an `Origin`, when sent, that is in CORS_ORIGINS or is the
 * service's own (PUBLIC_URL, or the origin the request was sent to), and no `Sec-Fetch-Site: cross-site`,
 * except from an origin in CORS_ORIGINS when COOKIE_SAMESITE=none declares a frontend on another site: every
 * request of such a frontend is cross-site, and its listed origin (with the CSRF token) is what admits it.
 */
export function assertTrustedOrigin(request: Request, config: AppConfig): void {
  const crossSite = request.headers['sec-fetch-site'] === 'cross-site';
  const origin = request.headers.origin;
  if (origin === undefined) {
    if (crossSite) throw new AppError('CSRF_FAILED');
    return;
  }
  const listed = config.http.corsOrigins.includes(origin);
  const own = [new URL(config.http.publicUrl).origin, `${request.protocol}://${request.get('host') ?? ''}`];
  if (!listed && !own.includes(origin)) throw new AppError('CSRF_FAILED');
  if (crossSite && !(listed && config.session.sameSite === 'none')) throw new AppError('CSRF_FAILED');
}

/** The synchronizer token check: `X-CSRF-Token` must equal the session's token, compared in constant time. */
export function assertCsrfToken(request: Request, expected: string | undefined): void {
  const presented = request.headers[CSRF_HEADER];
  if (typeof presented !== 'string' || !expected) throw new AppError('CSRF_FAILED');
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw new AppError('CSRF_FAILED');
}
