import type { CookieOptions, Request } from 'express';
import type { AppConfig } from '../config/app-config';

/** `__Host-` binds a secure cookie to this exact origin: Secure, Path=/, no Domain. */
export function sessionCookieName(config: AppConfig): string {
  return config.session.cookieSecure ? '__Host-sid' : 'sid';
}

export function sessionCookieOptions(config: AppConfig): CookieOptions {
  return {
    httpOnly: true,
    path: '/',
    sameSite: config.session.sameSite,
    secure: config.session.cookieSecure,
  };
}

/** Whether the client sent a session cookie at all, valid or not: tells "log in" from "session invalid". */
export function hasSessionCookie(request: Request, name: string): boolean {
  const header = request.headers.cookie;
  if (!header) return false;
  return header.split(';').some((pair) => pair.trim().startsWith(`${name}=`));
}
