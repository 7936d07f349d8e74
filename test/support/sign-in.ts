import request, { Response, Test } from 'supertest';
import type { RegisteredUser } from './factories';

/** A signed-in client of either method, able to make requests the way a browser or an app would. */
export interface Caller {
  method: 'session' | 'token';
  /** Adds this caller's credentials (and, for a cookie session, its CSRF token) to a request. */
  auth(test: Test): Test;
}

export interface SessionCaller extends Caller {
  method: 'session';
  cookie: string;
  csrfToken: string;
}

export interface TokenCaller extends Caller {
  method: 'token';
  accessToken: string;
  refreshToken: string;
}

/** The `name=value` pair of the session cookie a response set. */
export function sessionCookieOf(response: Response): string | undefined {
  const header = response.headers['set-cookie'] as unknown as string[] | undefined;
  return header?.find((cookie) => cookie.startsWith('sid='))?.split(';')[0];
}

export function asSession(cookie: string, csrfToken: string): SessionCaller {
  return {
    method: 'session',
    cookie,
    csrfToken,
    auth: (test) => test.set('Cookie', cookie).set('X-CSRF-Token', csrfToken),
  };
}

export function asBearer(accessToken: string, refreshToken: string): TokenCaller {
  return {
    method: 'token',
    accessToken,
    refreshToken,
    auth: (test) => test.set('Authorization', `Bearer ${accessToken}`),
  };
}

export async function sessionLogin(url: string, user: RegisteredUser): Promise<SessionCaller> {
  const response = await request(url)
    .post('/api/auth/session/login')
    .send({ email: user.email, password: user.password })
    .expect(200);
  return asSession(sessionCookieOf(response)!, (response.body as { csrfToken: string }).csrfToken);
}

export async function tokenLogin(url: string, user: RegisteredUser): Promise<TokenCaller> {
  const response = await request(url)
    .post('/api/auth/token/login')
    .send({ email: user.email, password: user.password })
    .expect(200);
  const body = response.body as { accessToken: string; refreshToken: string };
  return asBearer(body.accessToken, body.refreshToken);
}

export function signIn(url: string, user: RegisteredUser, method: 'session' | 'token'): Promise<Caller> {
  return method === 'session' ? sessionLogin(url, user) : tokenLogin(url, user);
}

/** Refreshes a token caller; resolves to the response so tests can check refusals too. */
export function refresh(url: string, caller: TokenCaller): Promise<Response> {
  return request(url).post('/api/auth/token/refresh').send({ refreshToken: caller.refreshToken });
}
