import { randomBytes } from 'node:crypto';
import request from 'supertest';

let counter = 0;

export function uniqueEmail(tag = 'user'): string {
  counter += 1;
  return `${tag}.${counter}.${randomBytes(3).toString('hex')}@example.com`;
}

export const STRONG_PASSWORD = 'lantern-orbit-cobalt-42';

export interface RegisteredUser {
  id: string;
  email: string;
  password: string;
}

export async function registerUser(
  url: string,
  overrides: Partial<{ email: string; password: string; displayName: string }> = {},
): Promise<RegisteredUser> {
  const email = overrides.email ?? uniqueEmail();
  const password = overrides.password ?? STRONG_PASSWORD;
  const response = await request(url)
    .post('/api/auth/register')
    .send({ email, password, ...(overrides.displayName ? { displayName: overrides.displayName } : {}) })
    .expect(201);
  return { id: (response.body as { user: { id: string } }).user.id, email, password };
}
