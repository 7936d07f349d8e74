import { createServer, Server } from 'node:net';
import { ensureBuilt, freePort, startService } from './support/instances';
import { createTestStorage, TEST_SERVERS, TestStorage } from './support/test-app';

/**
 * A database that cannot be used at start stops the built service quickly, with one line an operator can
 * act on: the variable, where it points (without the password), and why.
 */
describe('start against a database that cannot be used', () => {
  let storage: TestStorage;

  beforeAll(async () => {
    ensureBuilt();
    storage = await createTestStorage();
  });

  afterAll(async () => {
    await storage?.drop();
  });

  async function startAgainst(databaseUrl: string) {
    const started = Date.now();
    const service = await startService({ ...storage.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'info' });
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      service.exited,
      new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still running'), 20_000))),
    ]);
    clearTimeout(timer);
    await service.stop('SIGKILL');
    const lines = service
      .output()
      .split('\n')
      .filter((line) => line.trim() !== '');
    return { code, seconds: (Date.now() - started) / 1000, lines, output: service.output() };
  }

  function expectOneLine(result: Awaited<ReturnType<typeof startAgainst>>, reason: RegExp): void {
    expect(result.code).toBe(1);
    expect(result.seconds).toBeLessThan(15);
    expect(result.lines).toHaveLength(1);
    expect(result.lines[0]).toMatch(/^DATABASE_URL: /);
    expect(result.lines[0]).toMatch(reason);
    expect(result.output).not.toMatch(/\n\s+at /);
    expect(result.output).not.toContain('hunter2-secret');
  }

  it('stops within 15 s naming DATABASE_URL when nothing listens on its port', async () => {
    const port = await freePort();
    const result = await startAgainst(`postgresql://auth:hunter2-secret@127.0.0.1:${port}/auth`);
    expectOneLine(result, /connection refused/);
    expect(result.lines[0]).toContain(`127.0.0.1:${port}`);
  }, 30_000);

  it('stops within 15 s when the server accepts and hangs up at once', async () => {
    const server: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const result = await startAgainst(`postgresql://auth:hunter2-secret@127.0.0.1:${port}/auth`);
      expectOneLine(result, /terminated|reset|closed/i);
    } finally {
      server.close();
    }
  }, 30_000);

  (TEST_SERVERS.postgres ? it : it.skip)(
    'stops at once naming the database PostgreSQL does not have',
    async () => {
      const url = new URL(process.env.TEST_DATABASE_URL!);
      url.pathname = '/auth_no_such_database';
      url.password = 'hunter2-secret';
      const result = await startAgainst(url.toString());
      expectOneLine(result, /database "auth_no_such_database" does not exist/);
      expect(result.seconds).toBeLessThan(5);
    },
    30_000,
  );
});
