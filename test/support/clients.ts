import request, { Response } from 'supertest';
import type { RegisteredUser } from './factories';

/** Client-side helpers for specs that talk to running instances by URL only. */

export function expectError(response: Response, status: number, code: string): void {
  expect({ status: response.status, body: response.body as unknown }).toMatchObject({
    status,
    body: { statusCode: status, code },
  });
}

export function setCookies(response: Response): string[] {
  const header = response.headers['set-cookie'] as unknown as string[] | string | undefined;
  if (header === undefined) return [];
  return Array.isArray(header) ? header : [header];
}

export interface SessionLogin {
  cookie: string;
  csrfToken: string;
}

export async function sessionLogin(
  url: string,
  user: { email: string; password: string },
): Promise<SessionLogin> {
  const response = await request(url)
    .post('/api/auth/session/login')
    .send({ email: user.email, password: user.password });
  expect(response.status).toBe(200);
  const cookie = setCookies(response).find((value) => /^(__Host-)?sid=/.test(value));
  expect(cookie).toBeDefined();
  return { cookie: cookie!.split(';')[0], csrfToken: (response.body as { csrfToken: string }).csrfToken };
}

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
}

export async function tokenLogin(
  url: string,
  user: RegisteredUser | { email: string; password: string },
): Promise<TokenPair> {
  const response = await request(url)
    .post('/api/auth/token/login')
    .send({ email: user.email, password: user.password });
  expect(response.status).toBe(200);
  return response.body as TokenPair;
}

export function refresh(url: string, refreshToken: string) {
  return request(url).post('/api/auth/token/refresh').send({ refreshToken });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
