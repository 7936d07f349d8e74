import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { describeWith, REDIS_CLI, REDIS_SERVER } from './support/binaries';
import { expectError, refresh, sessionLogin, sleep, tokenLogin } from './support/clients';
import { registerUser, STRONG_PASSWORD } from './support/factories';
import { freePort } from './support/instances';
import { RedisServer, startRedisServer } from './support/redis-server';
import { createTestStorage, Env, startApp, TestStorage } from './support/test-app';

/** Everything the service keeps in Redis, exercised once: sessions and their index, limits, and health. */
async function exerciseRedisBackedFeatures(env: Env): Promise<void> {
  const running = await startApp({ ...env, LOGIN_MAX_FAILURES: '2' });
  try {
    const api = () => request(running.url);
    await api().get('/health/ready').expect(200);
    const user = await registerUser(running.url);
    const session = await sessionLogin(running.url, user);
    await api().get('/api/me').set('Cookie', session.cookie).expect(200);
    const listed = await api().get('/api/me/sessions').set('Cookie', session.cookie).expect(200);
    expect(listed.body).toEqual(expect.arrayContaining([expect.objectContaining({ method: 'session' })]));
    const tokens = await tokenLogin(running.url, user);
    await api().get('/api/me').set('Authorization', `Bearer ${tokens.accessToken}`).expect(200);
    expect((await refresh(running.url, tokens.refreshToken)).status).toBe(200);
    await api()
      .post('/api/auth/session/logout')
      .set('Cookie', session.cookie)
      .set('X-CSRF-Token', session.csrfToken)
      .expect(204);
    expectError(await api().get('/api/me').set('Cookie', session.cookie), 401, 'SESSION_INVALID');
    for (let i = 0; i < 2; i += 1) {
      await api()
        .post('/api/auth/token/login')
        .send({ email: user.email, password: `${STRONG_PASSWORD}-wrong` })
        .expect(401);
    }
    expectError(
      await api().post('/api/auth/session/login').send({ email: user.email, password: user.password }),
      429,
      'RATE_LIMITED',
    );
  } finally {
    await running.close();
  }
}

function withoutRedis(env: Env): Env {
  return { ...env, REDIS_URL: undefined, REDIS_SENTINELS: undefined, REDIS_CLUSTER_NODES: undefined };
}

describeWith([REDIS_SERVER, REDIS_CLI], 'Redis topologies, on redis-server processes of the test own', () => {
  let storage: TestStorage;
  const servers: RedisServer[] = [];
  const others: ChildProcess[] = [];
  const directory = mkdtempSync(join(tmpdir(), 'redis-topology-'));

  beforeAll(async () => {
    storage = await createTestStorage();
  });

  afterAll(async () => {
    for (const child of others) child.kill('SIGKILL');
    await Promise.all(servers.map((server) => server.stop()));
    rmSync(directory, { recursive: true, force: true });
    await storage.drop();
  });

  it('works on a three-master Redis Cluster (REDIS_CLUSTER_NODES)', async () => {
    const nodes: RedisServer[] = [];
    for (let i = 0; i < 3; i += 1) {
      const port = await freePort();
      const node = await startRedisServer(
        [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(directory, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '2000',
        ],
        port,
      );
      nodes.push(node);
      servers.push(node);
    }
    execFileSync('redis-cli', [
      '--cluster',
      'create',
      ...nodes.map((node) => `127.0.0.1:${node.port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    const deadline = Date.now() + 20_000;
    while (
      !execFileSync('redis-cli', ['-p', String(nodes[0].port), 'cluster', 'info'])
        .toString()
        .includes('cluster_state:ok')
    ) {
      if (Date.now() > deadline) throw new Error('the cluster did not settle');
      await sleep(200);
    }
    await exerciseRedisBackedFeatures({
      ...withoutRedis(storage.env),
      REDIS_CLUSTER_NODES: nodes.map((node) => node.url).join(','),
    });
    // The keys really are spread over the masters.
    const keyCounts = nodes.map((node) =>
      Number(
        execFileSync('redis-cli', ['-p', String(node.port), 'dbsize'])
          .toString()
          .trim(),
      ),
    );
    expect(keyCounts.filter((count) => count > 0).length).toBeGreaterThan(1);
  });

  it('works on a master watched by Redis Sentinel (REDIS_SENTINELS, REDIS_SENTINEL_NAME)', async () => {
    const master = await startRedisServer();
    servers.push(master);
    const sentinelPort = await freePort();
    const config = join(directory, 'sentinel.conf');
    writeFileSync(
      config,
      [
        `port ${sentinelPort}`,
        'bind 127.0.0.1',
        `sentinel monitor authmaster 127.0.0.1 ${master.port} 1`,
        'sentinel down-after-milliseconds authmaster 2000',
        '',
      ].join('\n'),
    );
    const sentinel = spawn('redis-server', [config, '--sentinel'], { stdio: 'ignore' });
    others.push(sentinel);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const answer = (() => {
        try {
          return execFileSync('redis-cli', [
            '-p',
            String(sentinelPort),
            'sentinel',
            'get-master-addr-by-name',
            'authmaster',
          ])
            .toString()
            .trim();
        } catch {
          return '';
        }
      })();
      if (answer.includes(String(master.port))) break;
      if (Date.now() > deadline) throw new Error('the sentinel did not start');
      await sleep(200);
    }
    await exerciseRedisBackedFeatures({
      ...withoutRedis(storage.env),
      REDIS_SENTINELS: `127.0.0.1:${sentinelPort}`,
      REDIS_SENTINEL_NAME: 'authmaster',
    });
    expect(
      Number(
        execFileSync('redis-cli', ['-p', String(master.port), 'dbsize'])
          .toString()
          .trim(),
      ),
    ).toBeGreaterThan(0);
  });
});
