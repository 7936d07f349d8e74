import request from 'supertest';
import { describeWith, REDIS_SERVER } from './support/binaries';
import { registerUser, RegisteredUser, STRONG_PASSWORD } from './support/factories';
import { expectError, sessionLogin, SessionCaller, sleep, TokenCaller, tokenLogin } from './support/clients';
import { ensureBuilt, Instance, shareDatabase, SharedDatabase, spawnInstance } from './support/instances';
import { RedisServer, startRedisServer } from './support/redis-server';
import { proxyDatabase, TcpProxy } from './support/tcp-proxy';
import { createTestStorage, Env, TEST_SERVERS, TestStorage } from './support/test-app';

type Phase = 'before' | 'outage' | 'restoring' | 'recovered';
type Component = 'redis' | 'database';
type Kind =
  | 'session-live'
  | 'session-revoked'
  | 'token-revoked'
  | 'session-login'
  | 'token-login'
  | 'locked-login'
  | 'refresh'
  | 'ready';

interface Outcome {
  kind: Kind;
  startedIn: Phase;
  endedIn: Phase;
  /** 'hung' when no answer came within the client's deadline. */
  status: number | 'hung' | 'failed';
  code?: string;
  cookie: boolean;
  token: boolean;
  details?: string[];
}

/** No request may wait longer than this for an answer, outage or not. */
const ANSWER_DEADLINE_MS = 20_000;
const RECOVERY_DEADLINE_MS = 30_000;

interface World {
  instances: Instance[];
  live: SessionCaller;
  revokedSession: SessionCaller;
  revokedToken: TokenCaller;
  user: RegisteredUser;
  /**
   * One account per traffic loop for the login kinds: each password check is counted while it is in flight
   * (LOGIN_MAX_FAILURES is 2 here), so one account logging in from every loop at once would be refused.
   */
  signers: RegisteredUser[];
  locked: RegisteredUser;
  refreshChain: string[];
}

const TRAFFIC_LOOPS = 4;

async function prepare(instances: Instance[]): Promise<World> {
  const [a, b] = instances;
  const user = await registerUser(a.url);
  const live = await sessionLogin(b.url, user);
  const revokedSession = await sessionLogin(a.url, user);
  await request(b.url)
    .post('/api/auth/session/logout')
    .set('Cookie', revokedSession.cookie)
    .set('X-CSRF-Token', revokedSession.csrfToken)
    .expect(204);
  const revokedToken = await tokenLogin(a.url, user);
  await request(b.url)
    .post('/api/auth/token/logout')
    .set('Authorization', `Bearer ${revokedToken.accessToken}`)
    .send({})
    .expect(204);
  const locked = await registerUser(a.url);
  for (const instance of [a, b]) {
    await request(instance.url)
      .post('/api/auth/token/login')
      .send({ email: locked.email, password: `${STRONG_PASSWORD}-wrong` })
      .expect(401);
  }
  const chain = await tokenLogin(b.url, user);
  const signers: RegisteredUser[] = [];
  for (let i = 0; i < TRAFFIC_LOOPS; i += 1) signers.push(await registerUser(a.url));
  return {
    instances,
    user,
    signers,
    live,
    revokedSession,
    revokedToken,
    locked,
    refreshChain: [chain.refreshToken],
  };
}

/** Requests of every kind to both instances, from a few concurrent loops, each answer recorded with its phase. */
class Traffic {
  phase: Phase = 'before';
  readonly outcomes: Outcome[] = [];
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(private readonly world: World) {}

  start(concurrency = TRAFFIC_LOOPS): void {
    this.running = true;
    const kinds: Kind[] = [
      'session-live',
      'session-revoked',
      'token-revoked',
      'session-login',
      'token-login',
      'locked-login',
      'refresh',
      'ready',
    ];
    this.loops = Array.from({ length: concurrency }, async (_, loop) => {
      for (let i = loop; this.running; i += 1) {
        const kind = kinds[i % kinds.length];
        const instance = this.world.instances[i % this.world.instances.length];
        await this.send(kind, instance.url, loop);
      }
    });
  }

  async stop(): Promise<Outcome[]> {
    this.running = false;
    await Promise.all(this.loops);
    return this.outcomes.splice(0);
  }

  private async send(kind: Kind, url: string, loop: number): Promise<void> {
    const startedIn = this.phase;
    const { world } = this;
    const json = { 'content-type': 'application/json' };
    const signer = world.signers[loop % world.signers.length];
    const credentials = { email: signer.email, password: signer.password };
    const chain = world.refreshChain;
    const calls: Record<Kind, () => [string, RequestInit]> = {
      'session-live': () => ['/api/auth/session', { headers: { cookie: world.live.cookie } }],
      'session-revoked': () => ['/api/auth/session', { headers: { cookie: world.revokedSession.cookie } }],
      'token-revoked': () => [
        '/api/auth/token/logout',
        {
          method: 'POST',
          headers: { ...json, authorization: `Bearer ${world.revokedToken.accessToken}` },
          body: '{}',
        },
      ],
      'session-login': () => [
        '/api/auth/session/login',
        { method: 'POST', headers: json, body: JSON.stringify(credentials) },
      ],
      'token-login': () => [
        '/api/auth/token/login',
        { method: 'POST', headers: json, body: JSON.stringify(credentials) },
      ],
      'locked-login': () => [
        '/api/auth/token/login',
        {
          method: 'POST',
          headers: json,
          body: JSON.stringify({ email: world.locked.email, password: world.locked.password }),
        },
      ],
      // One loop owns the chain, so a rotation never races another and each answer is unambiguous.
      refresh: () => [
        '/api/auth/token/refresh',
        { method: 'POST', headers: json, body: JSON.stringify({ refreshToken: chain[chain.length - 1] }) },
      ],
      ready: () => ['/health/ready', {}],
    };
    if (kind === 'refresh' && loop !== 0) kind = 'ready';
    const [path, init] = calls[kind]();
    const outcome: Omit<Outcome, 'endedIn'> = {
      kind,
      startedIn,
      status: 'failed',
      cookie: false,
      token: false,
    };
    try {
      const response = await fetch(`${url}${path}`, {
        ...init,
        signal: AbortSignal.timeout(ANSWER_DEADLINE_MS),
      });
      const body = (await response.json().catch(() => ({}))) as {
        code?: string;
        accessToken?: string;
        refreshToken?: string;
        details?: { field: string }[];
      };
      outcome.status = response.status;
      outcome.code = body.code;
      outcome.cookie = response.headers
        .getSetCookie()
        .some((cookie) => !/=;|Expires=Thu, 01 Jan 1970/.test(cookie));
      outcome.token = Boolean(body.accessToken || body.refreshToken);
      outcome.details = body.details?.map((detail) => detail.field);
      if (kind === 'refresh' && response.status === 200 && body.refreshToken) chain.push(body.refreshToken);
    } catch (error) {
      outcome.status = (error as Error).name === 'TimeoutError' ? 'hung' : 'failed';
    }
    this.outcomes.push({ ...outcome, endedIn: this.phase });
  }
}

/** What each kind may answer while the component is down; anything else fails the test. */
function allowedDuringOutage(kind: Kind, component: Component): number[] {
  switch (kind) {
    case 'session-live':
      // With Redis up the revocation cache stays trusted, and no revocation can commit without the database.
      return component === 'database' ? [200, 503] : [503];
    case 'session-login':
    case 'token-login':
      return [503];
    case 'locked-login':
      // The lock lives in Redis: with only the database down it is still read, and still refuses.
      return component === 'database' ? [429, 503] : [503];
    case 'session-revoked':
      // With Redis up and the database down, the store can still say the session does not exist.
      return component === 'database' ? [401, 503] : [503];
    case 'token-revoked':
      // Redis down: the database still says revoked. Database down: the revocation cache may still say so.
      return [401, 503];
    case 'refresh':
      // Refresh needs only the database: without Redis it may still answer correctly.
      return component === 'redis' ? [200, 503] : [503];
    case 'ready':
      return [503];
  }
}

const NORMAL: Record<Kind, number> = {
  'session-live': 200,
  'session-revoked': 401,
  'token-revoked': 401,
  'session-login': 200,
  'token-login': 200,
  'locked-login': 429,
  refresh: 200,
  ready: 200,
};

function summarise(outcomes: Outcome[]): string[] {
  return outcomes.map((o) => `${o.kind} ${o.startedIn}->${o.endedIn}: ${o.status} ${o.code ?? ''}`);
}

function expectOutageHeld(outcomes: Outcome[], component: Component): void {
  const unexpected: Outcome[] = [];
  for (const outcome of outcomes) {
    const { kind, startedIn, endedIn, status } = outcome;
    // Whatever the phase: an answer always comes, never a 500, never a revoked credential accepted.
    if (typeof status !== 'number' || (status >= 500 && status !== 503)) unexpected.push(outcome);
    else if ((kind === 'session-revoked' || kind === 'token-revoked') && status < 300)
      unexpected.push(outcome);
    else if (kind === 'locked-login' && status === 200) unexpected.push(outcome);
    else if (status === 503 && (outcome.cookie || outcome.token)) unexpected.push(outcome);
    else if (startedIn === 'outage' && endedIn === 'outage') {
      if (!allowedDuringOutage(kind, component).includes(status)) unexpected.push(outcome);
      if (kind === 'ready' && !outcome.details?.includes(component === 'redis' ? 'sessionStore' : 'database'))
        unexpected.push(outcome);
    } else if (startedIn === endedIn && (startedIn === 'before' || startedIn === 'recovered')) {
      if (status !== NORMAL[kind]) unexpected.push(outcome);
    } else if (status !== NORMAL[kind] && !allowedDuringOutage(kind, component).includes(status)) {
      // Across a transition, or while the service reconnects: the normal answer or an outage answer.
      unexpected.push(outcome);
    }
  }
  expect(summarise(unexpected)).toEqual([]);
  const during = outcomes.filter((o) => o.startedIn === 'outage' && o.endedIn === 'outage');
  // The outage phase really carried traffic of every kind.
  expect(new Set(during.map((o) => o.kind)).size).toBeGreaterThanOrEqual(7);
  expect(outcomes.filter((o) => o.startedIn === 'recovered').length).toBeGreaterThan(0);
}

async function waitFor(what: string, check: () => Promise<boolean>, deadlineMs = RECOVERY_DEADLINE_MS) {
  const deadline = Date.now() + deadlineMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`not within ${deadlineMs} ms: ${what}`);
    await sleep(250);
  }
}

async function readyStatus(url: string): Promise<number> {
  return (await fetch(`${url}/health/ready`)).status;
}

async function recovered(world: World): Promise<void> {
  for (const instance of world.instances) {
    await waitFor(`${instance.url} ready`, async () => (await readyStatus(instance.url)) === 200);
    await waitFor(`${instance.url} serves the session`, async () => {
      const response = await fetch(`${instance.url}/api/auth/session`, {
        headers: { cookie: world.live.cookie },
      });
      return response.status === 200;
    });
    await waitFor(`${instance.url} logs in`, async () => {
      const response = await request(instance.url)
        .post('/api/auth/token/login')
        .send({ email: world.user.email, password: world.user.password });
      return response.status === 200;
    });
  }
}

async function outageUnderTraffic(
  world: World,
  proxy: TcpProxy,
  component: Component,
  how: 'cut' | 'blackhole',
  duringOutage: () => Promise<void> = () => Promise.resolve(),
): Promise<void> {
  const traffic = new Traffic(world);
  traffic.start();
  await sleep(1000);
  traffic.phase = 'outage';
  if (how === 'cut') proxy.cut();
  else proxy.blackhole();
  for (const instance of world.instances) {
    await waitFor(`${instance.url} not ready`, async () => (await readyStatus(instance.url)) === 503);
  }
  await duringOutage();
  // Long enough for answers of every kind to come back during the outage, however slowly they come.
  await waitFor('answers of every kind during the outage', () =>
    Promise.resolve(
      new Set(traffic.outcomes.filter((o) => o.startedIn === 'outage').map((o) => o.kind)).size >= 7,
    ),
  );
  traffic.phase = 'restoring';
  proxy.restore();
  await recovered(world);
  traffic.phase = 'recovered';
  await sleep(1500);
  const outcomes = await traffic.stop();
  expectOutageHeld(outcomes, component);
}

function commonEnv(): Env {
  // A refresh whose answer a black hole swallowed is retried by its client after the outage, which can last
  // longer than the default 10 s grace window: the contract's answer to a lost response is a replay inside
  // the window, so the window here outlasts the outage (past it, REFRESH_TOKEN_REUSED is correct).
  return { PUBLIC_URL: 'http://auth.test', LOGIN_MAX_FAILURES: '2', REFRESH_REUSE_GRACE: '120s' };
}

// PostgreSQL mode cuts the shared Redis; embedded mode needs a redis-server of its own.
describeWith(TEST_SERVERS.redis ? [] : [REDIS_SERVER], 'outages: Redis cut while requests flow', () => {
  let storage: TestStorage;
  let shared: SharedDatabase;
  let privateRedis: RedisServer | undefined;
  let proxy: TcpProxy;
  let world: World;

  beforeAll(async () => {
    ensureBuilt();
    storage = await createTestStorage();
    shared = await shareDatabase(storage.env);
    // PostgreSQL mode cuts the shared Redis through the proxy; embedded mode brings a Redis of its own.
    if (!storage.env.REDIS_URL) privateRedis = await startRedisServer();
    const target = new URL(storage.env.REDIS_URL ?? privateRedis!.url);
    proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 6379) });
    const env = { ...shared.env, ...commonEnv(), REDIS_URL: `redis://127.0.0.1:${proxy.port}` };
    world = await prepare(await Promise.all([spawnInstance(env), spawnInstance(env)]));
  }, 180_000);

  afterAll(async () => {
    await Promise.all(world?.instances.map((instance) => instance.stop()) ?? []);
    await proxy?.close();
    await privateRedis?.stop();
    await shared?.close();
    await storage?.drop();
  });

  it('refuses Redis-backed requests with 503, accepts nothing revoked, and recovers by itself (connections reset)', async () => {
    const [a, b] = world.instances;
    let revokedDuring: TokenCaller | undefined;
    const spare = await tokenLogin(a.url, world.user);
    await outageUnderTraffic(world, proxy, 'redis', 'cut', async () => {
      // Token logout needs only the database, so it works through a Redis outage, and holds everywhere.
      const logout = await request(a.url)
        .post('/api/auth/token/logout')
        .set('Authorization', `Bearer ${spare.accessToken}`)
        .send({});
      expect([204, 503]).toContain(logout.status);
      if (logout.status === 204) revokedDuring = spare;
      const session = await request(b.url).get('/api/auth/session').set('Cookie', world.live.cookie);
      expectError(session, 503, 'SERVICE_UNAVAILABLE');
    });
    if (revokedDuring) {
      for (const instance of world.instances) {
        const probe = await request(instance.url)
          .post('/api/auth/token/logout')
          .set('Authorization', `Bearer ${revokedDuring.accessToken}`)
          .send({});
        expectError(probe, 401, 'TOKEN_REVOKED');
      }
    }
    // The lock taken before the outage is still there after it: the limiter did not lose its count.
    const locked = await request(b.url)
      .post('/api/auth/session/login')
      .send({ email: world.locked.email, password: world.locked.password });
    expectError(locked, 429, 'RATE_LIMITED');
  });

  it('answers within bounds and recovers when Redis stops answering without closing (black hole)', async () => {
    await outageUnderTraffic(world, proxy, 'redis', 'blackhole');
  });
});

describe('outages: database cut while requests flow', () => {
  let storage: TestStorage;
  let shared: SharedDatabase;
  let proxy: TcpProxy;
  let world: World;

  beforeAll(async () => {
    ensureBuilt();
    storage = await createTestStorage();
    shared = await shareDatabase(storage.env);
    const proxied = await proxyDatabase(shared.env);
    proxy = proxied.proxy;
    const env = { ...proxied.env, ...commonEnv() };
    world = await prepare(await Promise.all([spawnInstance(env), spawnInstance(env)]));
  }, 180_000);

  afterAll(async () => {
    await Promise.all(world?.instances.map((instance) => instance.stop()) ?? []);
    await proxy?.close();
    await shared?.close();
    await storage?.drop();
  });

  it('answers 503 for everything that needs the database and recovers by itself (connections reset)', async () => {
    await outageUnderTraffic(world, proxy, 'database', 'cut');
  });

  it('answers within bounds and recovers when the database stops answering without closing (black hole)', async () => {
    await outageUnderTraffic(world, proxy, 'database', 'blackhole');
  });
});
