import request from 'supertest';
import { Caller, expectError, signIn, tokenLogin } from './support/clients';
import { registerUser, uniqueEmail } from './support/factories';
import { shareDatabase, SharedDatabase } from './support/instances';
import { createTestStorage, RunningApp, startApp, TestStorage } from './support/test-app';

const ADMIN = { email: uniqueEmail('root'), password: 'admin-orbit-lantern-77' };
const RETENTION_SECONDS = 2;
const ADMINS_AT_ONCE = 8;

interface AuditItem {
  type: string;
  userId: string | null;
  ip: string | null;
  userAgent: string | null;
}

/**
 * Account deletion on two instances sharing one database (and Redis where configured): the last admin
 * cannot delete their own account, however many admins try at once; and a deleted user's audit entries
 * stay, keeping their IP and user agent for AUDIT_RETENTION (2 s here) before a job every instance runs
 * erases them.
 */
describe('account deletion', () => {
  let storage: TestStorage;
  let shared: SharedDatabase;
  let a: RunningApp;
  let b: RunningApp;

  beforeAll(async () => {
    storage = await createTestStorage();
    shared = await shareDatabase(storage.env);
    const env = {
      ...shared.env,
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      AUDIT_RETENTION: `${RETENTION_SECONDS}s`,
    };
    a = await startApp(env);
    b = await startApp(env);
  }, 120_000);

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await shared?.close();
    await storage?.drop();
  });

  const admin = (): Promise<Caller> => tokenLogin(a.url, ADMIN);

  async function auditOf(userId: string): Promise<AuditItem[]> {
    const caller = await admin();
    const response = await caller
      .auth(request(a.url).get(`/api/admin/audit?userId=${userId}&limit=100`))
      .expect(200);
    return (response.body as { items: AuditItem[] }).items;
  }

  async function adminCount(): Promise<number> {
    const caller = await admin();
    const response = await caller.auth(request(a.url).get('/api/admin/users?limit=100')).expect(200);
    return (response.body as { items: { role: string }[] }).items.filter((user) => user.role === 'admin')
      .length;
  }

  describe('the last admin', () => {
    it('cannot delete their own account: 400 VALIDATION_FAILED on role, and nothing changes', async () => {
      const root = await admin();
      const response = await root.auth(request(a.url).delete('/api/me')).send({ password: ADMIN.password });
      expectError(response, 400, 'VALIDATION_FAILED');
      expect((response.body as { details: { field: string }[] }).details[0].field).toBe('role');
      await root.auth(request(a.url).get('/api/admin/users')).expect(200);
    });

    it(`leaves exactly one admin when ${ADMINS_AT_ONCE} admins delete themselves at once, on two instances`, async () => {
      const root = await admin();
      const others = await Promise.all(Array.from({ length: ADMINS_AT_ONCE - 1 }, () => registerUser(a.url)));
      for (const other of others) {
        await root
          .auth(request(a.url).patch(`/api/admin/users/${other.id}`))
          .send({ role: 'admin' })
          .expect(200);
      }
      expect(await adminCount()).toBe(ADMINS_AT_ONCE);
      const everyone = [ADMIN, ...others];
      const callers = await Promise.all(everyone.map((user) => signIn(a.url, user, 'session')));
      const responses = await Promise.all(
        callers.map((caller, index) =>
          caller
            .auth(request((index % 2 === 0 ? a : b).url).delete('/api/me'))
            .send({ password: everyone[index].password }),
        ),
      );
      const statuses = responses.map((response) => response.status);
      expect(statuses.filter((status) => status === 204)).toHaveLength(ADMINS_AT_ONCE - 1);
      const refused = responses.filter((response) => response.status !== 204);
      expect(refused).toHaveLength(1);
      expectError(refused[0], 400, 'VALIDATION_FAILED');
      // The survivor is still an admin and can act as one; ADMIN_EMAIL now names a deleted user or the survivor.
      const survivor = everyone[statuses.indexOf(400)];
      const survivorCaller = await tokenLogin(b.url, survivor);
      const users = await survivorCaller.auth(request(b.url).get('/api/admin/users?limit=100')).expect(200);
      const admins = (users.body as { items: { role: string; email: string }[] }).items.filter(
        (user) => user.role === 'admin',
      );
      expect(admins.map((user) => user.email)).toEqual([survivor.email]);
      // Later tests sign in as ADMIN: restore it as an admin if it was deleted.
      if (survivor.email !== ADMIN.email) {
        const recreated = await registerUser(a.url, ADMIN);
        await survivorCaller
          .auth(request(b.url).patch(`/api/admin/users/${recreated.id}`))
          .send({ role: 'admin' })
          .expect(200);
      }
    });
  });

  describe('the audit trail of a deleted user', () => {
    it('keeps its entries under the user id, and their IP and user agent until AUDIT_RETENTION has passed', async () => {
      const user = await registerUser(a.url);
      const bystander = await registerUser(a.url);
      for (const someone of [user, bystander]) {
        await request(a.url)
          .post('/api/auth/session/login')
          .set('User-Agent', 'intruder-agent/6.6')
          .send({ email: someone.email, password: someone.password })
          .expect(200);
      }
      const caller = await tokenLogin(b.url, user);
      await caller.auth(request(b.url).delete('/api/me')).send({ password: user.password }).expect(204);

      const right = await auditOf(user.id);
      expect(right.map((event) => event.type)).toEqual(
        expect.arrayContaining(['user.registered', 'login.succeeded', 'user.deleted']),
      );
      expect(right).toContainEqual(
        expect.objectContaining({
          type: 'login.succeeded',
          userId: user.id,
          userAgent: 'intruder-agent/6.6',
          ip: expect.any(String),
        }),
      );

      // The job runs every quarter of the retention on each instance; give it the retention and a few runs.
      const deadline = Date.now() + RETENTION_SECONDS * 1000 + 10_000;
      let later = await auditOf(user.id);
      while (later.some((event) => event.ip !== null || event.userAgent !== null) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        later = await auditOf(user.id);
      }
      expect(later.map((event) => event.type).sort()).toEqual(right.map((event) => event.type).sort());
      for (const event of later) expect(event).toMatchObject({ userId: user.id, ip: null, userAgent: null });
      // A user who was not deleted keeps everything.
      expect(await auditOf(bystander.id)).toContainEqual(
        expect.objectContaining({
          type: 'login.succeeded',
          userAgent: 'intruder-agent/6.6',
          ip: expect.any(String),
        }),
      );
    });
  });
});
