// npm run soak -- --minutes 10 [--rate 80]: two built instances on one PostgreSQL and one Redis under mixed
// traffic at a bounded rate on loopback (logins, GET /api/me by cookie and by bearer token, refreshes,
// logouts). Reports errors (must be 0), p50/p99 per kind, and RSS/heap per instance sampled over the run
// (must level off). Exits 1 when either fails. Uses SOAK_DATABASE_URL / SOAK_REDIS_URL or the local
// defaults; creates its own database and key prefix and removes both at the end.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { createClient } from 'redis';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? Number(args[index + 1]) : fallback;
};
const MINUTES = option('minutes', 10);
const RATE = option('rate', 80);
const USERS = option('users', 40);
const MAX_IN_FLIGHT = 64;
const SAMPLE_EVERY_MS = 5_000;
const ADMIN_URL = process.env.SOAK_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.SOAK_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PASSWORD = 'lantern-orbit-cobalt-42';

const tag = randomBytes(4).toString('hex');
const database = `auth_soak_${tag}`;
const prefix = `soak${tag}:`;

function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startInstance(env) {
  const port = await freePort();
  const child = spawn(process.execPath, ['dist/src/main.js'], {
    env: { ...process.env, ...env, HOST: '127.0.0.1', PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const instance = { url: `http://127.0.0.1:${port}`, child, errorLines: [] };
  const collect = (chunk) => {
    for (const line of chunk.toString().split('\n')) {
      if (/"level":(50|60)/.test(line)) instance.errorLines.push(line.slice(0, 400));
    }
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  for (let i = 0; i < 300; i += 1) {
    const ready = await fetch(`${instance.url}/health/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return instance;
    await sleep(200);
  }
  throw new Error(`instance on ${port} did not become ready`);
}

async function call(url, method, path, { body, headers = {} } = {}) {
  const started = performance.now();
  try {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    return {
      status: response.status,
      json: text ? JSON.parse(text) : {},
      cookies: response.headers.getSetCookie(),
      ms: performance.now() - started,
    };
  } catch (error) {
    return { status: 0, json: { error: error.message }, cookies: [], ms: performance.now() - started };
  }
}

const latencies = new Map();
const errors = [];
let completed = 0;
let skipped = 0;
function record(kind, result, expected) {
  completed += 1;
  if (!latencies.has(kind)) latencies.set(kind, []);
  latencies.get(kind).push(result.ms);
  if (result.status !== expected && errors.length < 1_000_000) {
    errors.push(`${kind}: ${result.status} ${JSON.stringify(result.json).slice(0, 200)}`);
  }
  return result.status === expected;
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : 0;
}

async function memory(instance) {
  const text = await fetch(`${instance.url}/metrics`).then((r) => r.text());
  const value = (name) =>
    Number(
      text
        .split('\n')
        .find((line) => line.startsWith(`${name} `))
        ?.split(' ')[1] ?? NaN,
    );
  return { rss: value('process_resident_memory_bytes'), heap: value('nodejs_heap_size_used_bytes') };
}

const pick = (list) => list[Math.floor(Math.random() * list.length)];

async function sessionLogin(url, user) {
  const result = await call(url, 'POST', '/api/auth/session/login', {
    body: { email: user.email, password: PASSWORD },
  });
  if (record('session login', result, 200)) {
    user.cookie = result.cookies.find((c) => c.startsWith('sid='))?.split(';')[0];
    user.csrf = result.json.csrfToken;
  }
}

async function tokenLogin(url, user) {
  const result = await call(url, 'POST', '/api/auth/token/login', {
    body: { email: user.email, password: PASSWORD },
  });
  if (record('token login', result, 200)) {
    user.access = result.json.accessToken;
    user.refresh = result.json.refreshToken;
  }
}

const operations = [
  // [weight, kind, run(instanceUrl, otherUrl, user)]
  [
    35,
    'me by cookie',
    (url, _o, user) =>
      call(url, 'GET', '/api/me', { headers: { cookie: user.cookie } }).then((r) =>
        record('me by cookie', r, 200),
      ),
  ],
  [
    35,
    'me by bearer',
    (url, _o, user) =>
      call(url, 'GET', '/api/me', { headers: { authorization: `Bearer ${user.access}` } }).then((r) =>
        record('me by bearer', r, 200),
      ),
  ],
  [
    14,
    'refresh',
    async (url, _o, user) => {
      const result = await call(url, 'POST', '/api/auth/token/refresh', {
        body: { refreshToken: user.refresh },
      });
      if (record('refresh', result, 200)) {
        user.access = result.json.accessToken;
        user.refresh = result.json.refreshToken;
      }
    },
  ],
  [
    8,
    'session logout + login',
    async (url, other, user) => {
      const result = await call(url, 'POST', '/api/auth/session/logout', {
        headers: { cookie: user.cookie, 'x-csrf-token': user.csrf },
      });
      record('session logout', result, 204);
      await sessionLogin(other, user);
    },
  ],
  [
    8,
    'token logout + login',
    async (url, other, user) => {
      const result = await call(url, 'POST', '/api/auth/token/logout', {
        body: {},
        headers: { authorization: `Bearer ${user.access}` },
      });
      record('token logout', result, 204);
      await tokenLogin(other, user);
    },
  ],
];
const totalWeight = operations.reduce((sum, [weight]) => sum + weight, 0);
function chooseOperation() {
  let roll = Math.random() * totalWeight;
  for (const operation of operations) {
    roll -= operation[0];
    if (roll < 0) return operation;
  }
  return operations[0];
}

async function main() {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  const env = {
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    DATABASE_URL: url.toString(),
    REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    PUBLIC_URL: 'http://auth.soak',
    COOKIE_SECURE: 'false',
    SESSION_SECRET: randomBytes(32).toString('hex'),
    JWT_ALGORITHM: 'HS256',
    JWT_SECRET: randomBytes(32).toString('hex'),
    MFA_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
    BCRYPT_COST: '6',
    REGISTER_RATE_LIMIT: '1000000',
    REFRESH_RATE_LIMIT: '1000000',
    LOGIN_IP_MAX_FAILURES: '1000000',
    LOGIN_IP_MAX_ACCOUNTS: '1000000',
  };
  const instances = [];
  const redis = createClient({ url: REDIS_URL });
  let failed = true;
  try {
    instances.push(await startInstance(env), await startInstance(env));
    const users = [];
    for (let i = 0; i < USERS; i += 1) {
      const user = { email: `soak.${tag}.${i}@example.com`, busy: false };
      const registered = await call(instances[i % 2].url, 'POST', '/api/auth/register', {
        body: { email: user.email, password: PASSWORD },
      });
      if (registered.status !== 201) throw new Error(`register: ${registered.status}`);
      await sessionLogin(instances[i % 2].url, user);
      await tokenLogin(instances[(i + 1) % 2].url, user);
      users.push(user);
    }
    console.log(`soak: ${MINUTES} min at ${RATE} req/s on two instances, ${USERS} users`);

    const samples = instances.map(() => []);
    const endAt = Date.now() + MINUTES * 60_000;
    let inFlight = 0;
    const sampler = setInterval(async () => {
      for (const [index, instance] of instances.entries()) {
        const sample = await memory(instance).catch(() => undefined);
        if (sample) samples[index].push({ at: Date.now(), ...sample });
      }
    }, SAMPLE_EVERY_MS);
    const interval = 1000 / RATE;
    let next = performance.now();
    let lastReport = Date.now();
    while (Date.now() < endAt) {
      next += interval;
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
      const user = pick(users.filter((candidate) => !candidate.busy));
      if (!user || inFlight >= MAX_IN_FLIGHT) {
        skipped += 1;
        continue;
      }
      const [, , run] = chooseOperation();
      const [here, there] = Math.random() < 0.5 ? instances : [...instances].reverse();
      user.busy = true;
      inFlight += 1;
      run(here.url, there.url, user).finally(() => {
        user.busy = false;
        inFlight -= 1;
      });
      if (Date.now() - lastReport >= 60_000) {
        lastReport = Date.now();
        const rss = samples.map((s) => ((s.at(-1)?.rss ?? 0) / 2 ** 20).toFixed(0)).join('/');
        console.log(
          `  ${Math.round((endAt - Date.now()) / 1000)} s left: ${completed} requests, ${errors.length} errors, RSS ${rss} MiB`,
        );
      }
    }
    while (inFlight > 0) await sleep(50);
    clearInterval(sampler);

    console.log(
      `\nrequests ${completed}, errors ${errors.length}, skipped ticks ${skipped}, achieved ${(completed / (MINUTES * 60)).toFixed(1)} req/s`,
    );
    const all = [...latencies.values()].flat();
    console.log(
      `latency all: p50 ${percentile(all, 50).toFixed(1)} ms, p99 ${percentile(all, 99).toFixed(1)} ms`,
    );
    for (const [kind, values] of latencies) {
      console.log(
        `  ${kind.padEnd(16)} n=${String(values.length).padStart(6)}  p50 ${percentile(values, 50).toFixed(1).padStart(6)} ms  p99 ${percentile(values, 99).toFixed(1).padStart(6)} ms`,
      );
    }
    // Levelled off: the second half of the run grows by less than a tenth of the first sample after warm-up.
    let levelled = true;
    for (const [index, series] of samples.entries()) {
      const quarter = (q) =>
        series.slice(Math.floor((q * series.length) / 4), Math.floor(((q + 1) * series.length) / 4));
      const peak = (list, key) => Math.max(...list.map((s) => s[key])) / 2 ** 20;
      const line = ['rss', 'heap'].map((key) => {
        const peaks = [0, 1, 2, 3].map((q) => peak(quarter(q), key));
        const growth = peaks[3] - peaks[1];
        const ok = growth <= Math.max(16, peaks[1] * 0.1);
        levelled &&= ok;
        return `${key} peaks by quarter ${peaks.map((p) => p.toFixed(0)).join(' / ')} MiB (2nd->4th ${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MiB ${ok ? 'levelled' : 'GROWING'})`;
      });
      console.log(`instance ${index + 1}: ${line.join('; ')}`);
    }
    const serverErrors = instances.flatMap((instance) => instance.errorLines);
    console.log(`server error log lines: ${serverErrors.length}`);
    for (const line of [...errors.slice(0, 10), ...serverErrors.slice(0, 5)]) console.log(`  ${line}`);
    failed = errors.length > 0 || serverErrors.length > 0 || !levelled;
    console.log(failed ? 'SOAK FAILED' : 'SOAK PASSED');
  } finally {
    await Promise.all(
      instances.map(
        (instance) =>
          new Promise((resolve) => {
            instance.child.once('exit', resolve);
            instance.child.kill('SIGTERM');
          }),
      ),
    );
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
    await redis.connect();
    for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
      if (keys.length > 0) await redis.del(keys);
    }
    await redis.close();
  }
  process.exit(failed ? 1 : 0);
}

await main();
