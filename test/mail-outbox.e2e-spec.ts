import { Client } from 'pg';
import request from 'supertest';
import { describeWith, REDIS_SERVER } from './support/binaries';
import { expectError, sleep } from './support/clients';
import { registerUser, RegisteredUser } from './support/factories';
import { ensureBuilt, Instance, shareDatabase, SharedDatabase, spawnInstance } from './support/instances';
import { RedisServer, startRedisServer } from './support/redis-server';
import { SmtpSink, startSmtpSink } from './support/smtp-sink';
import { proxyDatabase, TcpProxy } from './support/tcp-proxy';
import { createTestStorage, Env, TEST_SERVERS, TestStorage } from './support/test-app';

/** The outbox's guarantees across processes: a crash loses no mail, and many instances send each mail once. */
describe('mail outbox across instances', () => {
  let storage: TestStorage;
  let shared: SharedDatabase;
  let sink: SmtpSink;
  let env: Env;
  const instances: Instance[] = [];

  beforeAll(async () => {
    ensureBuilt();
    storage = await createTestStorage();
    shared = await shareDatabase(storage.env);
    sink = await startSmtpSink();
    env = {
      ...shared.env,
      MAIL_URL: sink.url,
      FRONTEND_URL: 'https://app.example.com',
      MAIL_POLL_INTERVAL_MS: '50',
      MAIL_RETRY_BASE_MS: '200',
    };
  }, 120_000);

  afterAll(async () => {
    for (const instance of instances) await instance.stop('SIGKILL');
    await sink?.stop();
    await shared?.close();
    await storage?.drop();
  });

  async function spawn(extra: Env = {}): Promise<Instance> {
    const instance = await spawnInstance({ ...env, ...extra });
    instances.push(instance);
    return instance;
  }

  interface OutboxRow {
    template: string;
    variables: Record<string, string>;
    sent_at: Date | null;
  }

  async function outboxRows(recipient: string): Promise<OutboxRow[]> {
    const client = new Client({ connectionString: shared.env.DATABASE_URL });
    await client.connect();
    try {
      const result = await client.query<OutboxRow>(
        'SELECT template, variables, sent_at FROM mail_outbox WHERE recipient = $1 ORDER BY created_at',
        [recipient],
      );
      return result.rows;
    } finally {
      await client.end();
    }
  }

  const outboxTemplates = async (recipient: string) =>
    (await outboxRows(recipient)).map((row) => row.template);

  it('keeps the mail of an instance killed right after its 202s: another instance sends it', async () => {
    // This instance's worker would first look in a minute: it dies before it sends or resolves anything.
    const doomed = await spawn({ MAIL_POLL_INTERVAL_MS: '60000' });
    const user = await registerUser(doomed.url);
    await request(doomed.url).post('/api/auth/password/forgot').send({ email: user.email }).expect(202);
    // Both are in the database by the time of the 202: registration's mail, and the reset request.
    expect(await outboxTemplates(user.email)).toEqual(['verify-email', 'password-reset-request']);
    await doomed.stop('SIGKILL');
    expect(sink.to(user.email)).toHaveLength(0);

    await spawn();
    await sink.waitFor(() => sink.to(user.email).length === 2, 30_000);
    await sleep(1000);
    expect(
      sink
        .to(user.email)
        .map((mail) => mail.subject)
        .sort(),
    ).toEqual(['Confirm your email address', 'Reset your password']);
    // The request became the mail; once sent, its row keeps no link.
    const rows = await outboxRows(user.email);
    expect(rows.map((row) => row.template)).toEqual(['verify-email', 'password-reset']);
    expect(rows.every((row) => row.sent_at && Object.keys(row.variables).length === 0)).toBe(true);
  });

  it('delays mail through an SMTP outage and then sends each mail once, with two instances', async () => {
    const second = await spawn();
    const first = instances.find(
      (instance) =>
        instance !== second && instance.process.exitCode === null && instance.process.signalCode === null,
    )!;
    await sink.stop();
    const users: RegisteredUser[] = [];
    try {
      for (let i = 0; i < 10; i += 1) {
        const target = i % 2 ? first : second;
        const user = await registerUser(target.url);
        users.push(user);
        const asked = await request(target.url).post('/api/auth/password/forgot').send({ email: user.email });
        expect(asked.status).toBe(202);
      }
      // Both workers try and fail meanwhile; nothing is sent and no request failed.
      await sleep(1500);
      expect(users.flatMap((user) => sink.to(user.email))).toHaveLength(0);
    } finally {
      await sink.start();
    }
    await sink.waitFor(() => users.every((user) => sink.to(user.email).length === 2), 30_000);
    await sleep(1500);
    const delivered = users.flatMap((user) => sink.to(user.email));
    expect(delivered).toHaveLength(20);
    expect(new Set(delivered.map((mail) => mail.messageId)).size).toBe(20);
    for (const user of users) {
      expect(
        sink
          .to(user.email)
          .map((mail) => mail.subject)
          .sort(),
      ).toEqual(['Confirm your email address', 'Reset your password']);
    }
  });
});

// The database cut while Redis stays: PostgreSQL mode keeps the shared Redis; embedded mode brings its own.
describeWith(TEST_SERVERS.redis ? [] : [REDIS_SERVER], 'forgot while the database is unreachable', () => {
  let storage: TestStorage;
  let shared: SharedDatabase;
  let privateRedis: RedisServer | undefined;
  let proxy: TcpProxy;
  let sink: SmtpSink;
  let instance: Instance | undefined;

  beforeAll(async () => {
    ensureBuilt();
    storage = await createTestStorage();
    shared = await shareDatabase(storage.env);
    if (!storage.env.REDIS_URL) privateRedis = await startRedisServer();
    sink = await startSmtpSink();
    const proxied = await proxyDatabase(shared.env);
    proxy = proxied.proxy;
    instance = await spawnInstance({
      ...proxied.env,
      REDIS_URL: storage.env.REDIS_URL ?? privateRedis!.url,
      MAIL_URL: sink.url,
      MAIL_POLL_INTERVAL_MS: '50',
      MAIL_RETRY_BASE_MS: '200',
    });
  }, 120_000);

  afterAll(async () => {
    await instance?.stop('SIGKILL');
    await proxy?.close();
    await privateRedis?.stop();
    await sink?.stop();
    await shared?.close();
    await storage?.drop();
  });

  it('answers 503, not 202, while the request cannot be recorded; 202 and one mail once it can', async () => {
    const { url } = instance!;
    const user = await registerUser(url);
    const resets = () => sink.to(user.email).filter((mail) => mail.subject === 'Reset your password');
    proxy.cut();
    try {
      // The per-client limit (in Redis) passes; the request's row cannot be written.
      const refused = await request(url).post('/api/auth/password/forgot').send({ email: user.email });
      expectError(refused, 503, 'SERVICE_UNAVAILABLE');
    } finally {
      proxy.restore();
    }
    for (let i = 0; i < 100 && (await fetch(`${url}/health/ready`)).status !== 200; i += 1) await sleep(100);
    await request(url).post('/api/auth/password/forgot').send({ email: user.email }).expect(202);
    await sink.waitFor(() => resets().length === 1, 30_000);
    await sleep(1000);
    expect(resets()).toHaveLength(1);
  });
});
