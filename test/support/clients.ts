import request, { Response, Test } from 'supertest';

/** Client-side helpers for specs that talk to a running service by URL, as a browser or an app would. */

type Credentials = { email: string; password: string };

/** An error answer in the contract's one shape, with nothing internal leaking into it. */
export function expectError(response: Response, status: number, code: string): void {
  expect({ status: response.status, body: response.body as unknown }).toMatchObject({
    status,
    body: { statusCode: status, code, message: expect.any(String), requestId: expect.any(String) },
  });
  // The request id is the client's own when it sent one (a spec may name it after what it tests).
  const answer = JSON.stringify({ ...(response.body as object), requestId: undefined });
  expect(answer).not.toMatch(/stack|at \w+ \(|QueryFailedError|SELECT|INSERT|node_modules/i);
  expect(response.headers['cache-control']).toBe('no-store');
}

export function setCookies(response: Response): string[] {
  const header = response.headers['set-cookie'] as unknown as string[] | string | undefined;
  if (header === undefined) return [];
  return Array.isArray(header) ? header : [header];
}

/** The `name=value` pair of the session cookie a response set (`sid` or `__Host-sid`). */
export function sessionCookieOf(response: Response): string | undefined {
  return setCookies(response)
    .find((cookie) => /^(__Host-)?sid=/.test(cookie))
    ?.split(';')[0];
}

/** A signed-in client of either method. */
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

export async function sessionLogin(url: string, user: Credentials): Promise<SessionCaller> {
  const response = await request(url)
    .post('/api/auth/session/login')
    .send({ email: user.email, password: user.password });
  expect(response.status).toBe(200);
  const cookie = sessionCookieOf(response);
  expect(cookie).toBeDefined();
  return asSession(cookie!, (response.body as { csrfToken: string }).csrfToken);
}

export async function tokenLogin(url: string, user: Credentials): Promise<TokenCaller> {
  const response = await request(url)
    .post('/api/auth/token/login')
    .send({ email: user.email, password: user.password });
  expect(response.status).toBe(200);
  const body = response.body as { accessToken: string; refreshToken: string };
  return asBearer(body.accessToken, body.refreshToken);
}

export function signIn(url: string, user: Credentials, method: 'session' | 'token'): Promise<Caller> {
  return method === 'session' ? sessionLogin(url, user) : tokenLogin(url, user);
}

/** Resolves to the response, so tests can check refusals too. */
export function refresh(url: string, refreshToken: string): Promise<Response> {
  return request(url).post('/api/auth/token/refresh').send({ refreshToken });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
