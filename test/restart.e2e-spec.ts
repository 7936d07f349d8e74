import request from 'supertest';
import { registerUser } from './support/factories';
import { createTestStorage, startApp, TestStorage } from './support/test-app';

describe('durability: a restart keeps registered users', () => {
  let storage: TestStorage;

  beforeAll(async () => {
    storage = await createTestStorage();
  });

  afterAll(async () => {
    await storage.drop();
  });

  it('refuses to register the same email after a restart', async () => {
    const first = await startApp(storage.env);
    const user = await registerUser(first.url);
    await first.close();

    const second = await startApp(storage.env);
    try {
      await request(second.url)
        .post('/api/auth/register')
        .send({ email: user.email, password: user.password })
        .expect(409);
    } finally {
      await second.close();
    }
  });
});
