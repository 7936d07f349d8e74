// npm run bench: starts the built service against PostgreSQL and Redis on core 0, drives it with autocannon
// from core 1, and prints a table of req/s, p50 and p99 with ratios to baselines measured in the same run.
// Writes bench/results/<timestamp>.json. Needs BENCH_DATABASE_URL / BENCH_REDIS_URL or the local defaults.
import autocannon from 'autocannon';
import bcrypt from 'bcrypt';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { createClient } from 'redis';

if (!process.env.BENCH_PINNED) {
  // Re-run pinned to core 1 so the load generator never competes with the server on core 0.
  const child = spawn('taskset', ['-c', '1', process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_PINNED: '1' },
  });
  child.on('exit', (code) => process.exit(code ?? 1));
} else {
  await main();
}

const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const DURATION = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = 32;
const COST = Number(process.env.BENCH_BCRYPT_COST ?? 10);
const PASSWORD = 'lantern-orbit-cobalt-42';

async function main() {
  const results = { at: new Date().toISOString(), durationSeconds: DURATION, connections: CONNECTIONS, bcryptCost: COST, scenarios: {}, sizes: {}, store: {} };
  const redis = createClient({ url: REDIS_URL });
  await redis.connect();

  for (const algorithm of ['ES256', 'HS256']) {
    const server = await startServer(algorithm, redis);
    try {
      const users = await makeUsers(server.url, 32);
      const baseline = await run(`${algorithm}: GET /health/live (unauthenticated)`, { url: `${server.url}/health/live` });
      results.scenarios[`health-${algorithm}`] = baseline;
      const bearer = await run(`${algorithm}: GET /api/me bearer`, {
        url: `${server.url}/api/me`,
        headers: { authorization: `Bearer ${users[0].accessToken}` },
      }, baseline);
      results.scenarios[`me-bearer-${algorithm}`] = bearer;
      results.sizes[`accessToken${algorithm}Bytes`] = users[0].accessToken.length;
      if (algorithm === 'ES256') {
        const before = await commandCalls(redis);
        const session = await run('ES256: GET /api/me session cookie', {
          url: `${server.url}/api/me`,
          headers: { cookie: users[0].cookie },
        }, baseline);
        const after = await commandCalls(redis);
        results.scenarios['me-session'] = session;
        results.store.redisCommandsPerSessionRead = perRequest(before, after, session.requests);
        results.sizes.sessionCookieBytes = users[0].cookie.length;
        results.sizes.redisBytesPerSession = await sessionMemory(redis, server.prefix);

        const bound = await bcryptBound(CONNECTIONS);
        results.scenarios['bcrypt-bound'] = bound;
        const login = await run('ES256: POST /api/auth/token/login', {
          url: `${server.url}/api/auth/token/login`,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email: users[1].email, password: PASSWORD }),
        }, bound);
        login.eventLoopDelayP99Ms = await eventLoopP99(server.url);
        results.scenarios['token-login'] = login;

        results.scenarios['refresh'] = await runRefresh(server.url, users, baseline);
      }
    } finally {
      await server.stop();
    }
  }
  await redis.close();
  printTable(results);
  mkdirSync('bench/results', { recursive: true });
  const file = `bench/results/${results.at.replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, JSON.stringify(results, null, 2));
  console.log(`\nwritten: ${file}`);
}

async function startServer(algorithm, redis) {
  const database = `auth_bench_${Date.now()}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  const port = 3900 + Math.floor(Math.random() * 90);
  const prefix = `bench${Date.now()}:`;
  const child = spawn('taskset', ['-c', '0', process.execPath, 'dist/src/main.js'], {
    env: {
      ...process.env,
      NODE_ENV: 'development',
      PORT: String(port),
      DATABASE_URL: url.toString(),
      REDIS_URL: REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      JWT_ALGORITHM: algorithm,
      BCRYPT_COST: String(COST),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i += 1) {
    try {
      if ((await fetch(`${base}/health/ready`)).ok) break;
    } catch {}
    await sleep(200);
  }
  return {
    url: base,
    prefix,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      const cleanup = new pg.Client({ connectionString: ADMIN_URL });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await cleanup.end();
      for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) if (keys.length) await redis.del(keys);
    },
  };
}

async function makeUsers(url, count) {
  const users = [];
  for (let i = 0; i < count; i += 1) {
    const email = `bench.${i}.${Date.now()}@example.com`;
    await post(url, '/api/auth/register', { email, password: PASSWORD });
    const token = await post(url, '/api/auth/token/login', { email, password: PASSWORD });
    const session = await fetch(`${url}/api/auth/session/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: PASSWORD }),
    });
    const cookie = session.headers.getSetCookie()[0].split(';')[0];
    users.push({ email, accessToken: token.body.accessToken, refreshToken: token.body.refreshToken, cookie });
  }
  return users;
}

async function post(url, path, body) {
  const response = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await response.text();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${text}`);
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

function summarize(name, result, baseline) {
  const total = result.requests.total ?? result.requests.sent;
  const ok = result['2xx'];
  const non2xx = result.non2xx + result.errors + result.timeouts;
  const summary = {
    name,
    requests: total,
    non2xx,
    valid: ok > 0 && non2xx <= total * 0.01,
    rps: Math.round(ok / result.duration),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
  };
  if (baseline?.rps) summary.ratio = Number((summary.rps / baseline.rps).toFixed(3));
  return summary;
}

async function run(name, options, baseline) {
  const result = await autocannon({ connections: CONNECTIONS, duration: DURATION, ...options });
  return summarize(name, result, baseline);
}

async function runRefresh(url, users, baseline) {
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: DURATION,
    requests: [
      {
        method: 'POST',
        path: '/api/auth/token/refresh',
        headers: { 'content-type': 'application/json' },
        setupRequest(request, context) {
          // Each connection owns one family and presents every refresh token exactly once.
          context.token ??= users[(context.index = (globalThis.__next = (globalThis.__next ?? -1) + 1)) % users.length].refreshToken;
          return { ...request, body: JSON.stringify({ refreshToken: context.token }) };
        },
        onResponse(status, body, context) {
          if (status === 200) context.token = JSON.parse(body).refreshToken;
        },
      },
    ],
  });
  return summarize('ES256: POST /api/auth/token/refresh (rotation)', result, baseline);
}

async function bcryptBound(concurrency) {
  const input = createHash('sha384').update(PASSWORD).digest('base64');
  const hash = await bcrypt.hash(input, COST);
  const deadline = Date.now() + DURATION * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < deadline) {
        await bcrypt.compare(input, hash);
        done += 1;
      }
    }),
  );
  return { name: `in-process bcrypt compare, cost ${COST}, concurrency ${concurrency}`, rps: Math.round(done / DURATION), valid: true };
}

async function commandCalls(redis) {
  const info = await redis.info('commandstats');
  let calls = 0;
  for (const match of info.matchAll(/calls=(\d+)/g)) calls += Number(match[1]);
  return calls;
}

function perRequest(before, after, summary) {
  return Number(((after - before) / Math.max(1, summary)).toFixed(3));
}

async function sessionMemory(redis, prefix) {
  for await (const keys of redis.scanIterator({ MATCH: `${prefix}sess:*`, COUNT: 1000 })) {
    if (keys.length) return Number(await redis.sendCommand(['MEMORY', 'USAGE', keys[0]]));
  }
  return undefined;
}

async function eventLoopP99(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const match = /^nodejs_eventloop_lag_p99_seconds\S* ([\d.e+-]+)/m.exec(text);
  return match ? Number((Number(match[1]) * 1000).toFixed(2)) : undefined;
}

function printTable(results) {
  const rows = Object.values(results.scenarios);
  console.log('\n| scenario | req/s | p50 ms | p99 ms | ratio | non-2xx | valid |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const row of rows) {
    console.log(`| ${row.name} | ${row.valid ? row.rps : 'invalid'} | ${row.p50Ms ?? ''} | ${row.p99Ms ?? ''} | ${row.ratio ?? ''} | ${row.non2xx ?? ''} | ${row.valid} |`);
  }
  console.log('\nsizes:', JSON.stringify(results.sizes), '\nstore:', JSON.stringify(results.store));
  const refresh = results.scenarios.refresh;
  if (refresh) console.log(`event-loop p99 during login burst: ${results.scenarios['token-login'].eventLoopDelayP99Ms} ms`);
}
