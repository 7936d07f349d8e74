import type { CookieOptions, Response } from 'express';
import type { AppConfig } from '../config/app-config';
import { readCookie } from '../common/cookies';

const ONE_YEAR_MS = 365 * 24 * 60 * 60 * 1000;

/** The device token's cookie: `__Host-` bound to this origin when secure. */
export function deviceCookieName(config: AppConfig): string {
  return config.session.cookieSecure ? '__Host-did' : 'did';
}

function deviceCookieOptions(config: AppConfig): CookieOptions {
  return {
    httpOnly: true,
    path: '/',
    sameSite: 'strict',
    secure: config.session.cookieSecure,
    maxAge: ONE_YEAR_MS,
  };
}

export function setDeviceCookie(response: Response, config: AppConfig, token: string): void {
  response.cookie(deviceCookieName(config), token, deviceCookieOptions(config));
}

/** The device token a client presents: the body's (clients without cookies) wins over the cookie. */
export function presentedDeviceToken(
  cookieHeader: string | undefined,
  config: AppConfig,
  fromBody?: string,
): string | undefined {
  return fromBody ?? readCookie(cookieHeader, deviceCookieName(config));
}
