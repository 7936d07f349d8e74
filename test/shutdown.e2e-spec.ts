import { Agent, request as httpRequest } from 'node:http';
import { registerUser, RegisteredUser } from './support/factories';
import { sleep } from './support/clients';
import { ensureBuilt, Instance, spawnInstance } from './support/instances';
import { createTestStorage, TestStorage } from './support/test-app';

interface Answer {
  status?: number;
  error?: string;
  accessToken?: boolean;
}

function send(agent: Agent, url: string, method: string, path: string, body?: unknown): Promise<Answer> {
  return new Promise((resolve) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const call = httpRequest(
      `${url}${path}`,
      { method, agent, headers: payload ? { 'content-type': 'application/json' } : {} },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => {
          const parsed = (() => {
            try {
              return JSON.parse(text) as { accessToken?: string };
            } catch {
              return {};
            }
          })();
          resolve({ status: response.statusCode, accessToken: Boolean(parsed.accessToken) });
        });
        response.on('error', (error: NodeJS.ErrnoException) =>
          resolve({ error: error.code ?? error.message }),
        );
      },
    );
    call.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
    call.end(payload);
  });
}

async function inFlight(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((entry) => entry.startsWith('http_requests_in_flight '));
  return Number(line?.split(' ')[1] ?? 0);
}

/**
 * SIGTERM to a spawned instance while logins are being served: every request the service had received
 * before the signal completes with its normal answer, idle keep-alive connections do not hold the process,
 * and the process exits 0 once the database and Redis are closed.
 */
describe('shutdown: SIGTERM under load', () => {
  let storage: TestStorage;
  let instance: Instance | undefined;

  beforeAll(async () => {
    ensureBuilt();
    storage = await createTestStorage();
  });

  afterAll(async () => {
    await instance?.stop('SIGKILL');
    await storage.drop();
  });

  it('finishes every request accepted before the signal, then closes and exits 0', async () => {
    // A real bcrypt cost makes each login take long enough to still be running when the signal comes.
    instance = await spawnInstance({ ...storage.env, BCRYPT_COST: '12' });
    const { url } = instance;
    const count = 4;
    // One account per login: password checks in flight count towards the account's limit (5).
    const users: RegisteredUser[] = [];
    for (let i = 0; i < count; i += 1) users.push(await registerUser(url));
    const agent = new Agent({ keepAlive: true, maxSockets: 64 });
    // Open keep-alive connections that sit idle when the signal comes.
    await Promise.all(Array.from({ length: 6 }, () => send(agent, url, 'GET', '/health/live')));

    // Few enough that the bounded hashing queue (3 s of bcrypt) takes them all on a busy machine too.
    const accepted = users.map((user) =>
      send(agent, url, 'POST', '/api/auth/token/login', { email: user.email, password: user.password }),
    );
    const deadline = Date.now() + 30_000;
    // The scrape itself is one request in flight.
    while ((await inFlight(url)) < count + 1) {
      if (Date.now() > deadline) throw new Error('the logins never were all in flight together');
      await sleep(5);
    }
    instance.process.kill('SIGTERM');
    // Requests sent after the signal may be refused; any answer they do get must not be a server error.
    const late = Array.from({ length: 6 }, () => send(agent, url, 'GET', '/health/live'));

    const answers = await Promise.all(accepted);
    expect(answers).toEqual(Array.from({ length: count }, () => ({ status: 200, accessToken: true })));
    for (const answer of await Promise.all(late)) {
      if (answer.status !== undefined) expect(answer.status).toBeLessThan(500);
    }
    expect(await instance.exited).toBe(0);
    expect(instance.output()).not.toMatch(/"level":(50|60)/);
    agent.destroy();
  });
});
