// Where one scenario spends the service's CPU: starts the built service (PostgreSQL and Redis, as
// `npm run bench`, TRUST_PROXY=1) pinned to core 0 under `node --cpu-prof`, loads it from core 1 for
// BENCH_SECONDS with 32 connections, and prints the service's CPU time per request (from /proc, which
// moves far less than req/s on a shared machine), then the share of CPU samples by package or source file
// and the functions with the most self time. Sharing is robust here: a profile's shares are of the
// service's own samples.
//
//   npm run build && node bench/profile.mjs [scenario]        BENCH_SERVICE_DIR=<a built checkout> for another build
//
// Scenarios: health (GET /health/live, the default), bearer and cookie (GET /api/me), refresh (a family
// per connection), refresh-shared (100 families in turn, each request from another X-Forwarded-For) and
// login (token login in turn for 32 users, at bcrypt cost 4 as every scenario here: what a login costs
// besides its hash).
import autocannon from 'autocannon';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SERVICE_DIR = process.env.BENCH_SERVICE_DIR ?? process.cwd();
const DURATION = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = 32;
const PASSWORD = 'lantern-orbit-cobalt-42';
const SCENARIO = process.argv[2] ?? 'health';
const SCENARIOS = ['health', 'bearer', 'cookie', 'login', 'refresh', 'refresh-shared'];
if (!SCENARIOS.includes(SCENARIO)) throw new Error(`scenario: one of ${SCENARIOS.join(', ')}`);

/** When the measured load ran, and when the service exited (the profile's end), on this process's clock. */
const window = {};

if (!process.env.BENCH_PINNED) {
  // Re-run pinned to core 1 so the load generator never competes with the service for its core.
  const child = spawn('taskset', ['-c', '1', process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_PINNED: '1' },
  });
  child.on('exit', (code) => process.exit(code ?? 1));
} else {
  await main();
}

async function main() {
  const name = `auth_profile_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const databaseUrl = new URL(ADMIN_URL);
  databaseUrl.pathname = `/${name}`;
  const profileDir = mkdtempSync(join(tmpdir(), 'auth-profile-'));
  const port = 3980 + Math.floor(Math.random() * 9);
  const child = spawn(
    'taskset',
    ['-c', '0', process.execPath, '--cpu-prof', `--cpu-prof-dir=${profileDir}`, 'dist/src/main.js'],
    {
      cwd: SERVICE_DIR,
      env: {
        ...process.env,
        NODE_ENV: 'development',
        HOST: '127.0.0.1',
        PORT: String(port),
        DATABASE_URL: databaseUrl.toString(),
        REDIS_URL,
        REDIS_KEY_PREFIX: `profile${randomBytes(4).toString('hex')}:`,
        BCRYPT_COST: '4',
        LOG_LEVEL: 'warn',
        TRUST_PROXY: '1',
        REGISTER_RATE_LIMIT: '1000000',
        REFRESH_RATE_LIMIT: '1000000',
        LOGIN_IP_MAX_FAILURES: '1000000',
        LOGIN_IP_MAX_ACCOUNTS: '1000000',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  const url = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; ; i += 1) {
      try {
        if ((await fetch(`${url}/health/ready`)).ok) break;
      } catch {}
      if (i > 150) throw new Error('the service did not become ready');
      await sleep(200);
    }
    await sleep(500);
    const load = await scenario(url);
    await autocannon({ ...(await load()), connections: CONNECTIONS, duration: 3 });
    const options = await load();
    const before = cpuMs(child.pid);
    window.start = performance.now();
    const result = await autocannon({ ...options, connections: CONNECTIONS, duration: DURATION });
    window.end = performance.now();
    const cpu = cpuMs(child.pid) - before;
    const sent = result.requests.sent ?? result.requests.total;
    console.log(
      `${SCENARIO}: ${Math.round(result['2xx'] / result.duration)} req/s under the profiler, ` +
        `${result.non2xx + result.errors + result.timeouts} failed, ` +
        `${Math.round((cpu * 1000) / sent)} µs of the service's CPU per request (profiler included), ` +
        `load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
    );
  } finally {
    child.kill('SIGINT');
    await new Promise((resolve) => child.once('exit', resolve));
    window.exit = performance.now();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
  report(JSON.parse(readFileSync(join(profileDir, readdirSync(profileDir)[0]), 'utf8')), window);
}

/** utime + stime of a process, in milliseconds (USER_HZ is 100 on Linux). */
function cpuMs(pid) {
  const fields = execFileSync('cat', [`/proc/${pid}/stat`])
    .toString()
    .split(') ')[1]
    .split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** A function that builds fresh autocannon options for the scenario (fresh families for each refresh load). */
async function scenario(url) {
  if (SCENARIO === 'health') return async () => ({ url: `${url}/health/live` });
  const users = [];
  for (let i = 0; i < CONNECTIONS; i += 1) {
    const email = `profile.${i}.${randomBytes(4).toString('hex')}@example.com`;
    await post(url, '/api/auth/register', { email, password: PASSWORD });
    users.push(email);
  }
  if (SCENARIO === 'login') {
    let next = 0;
    return async () => ({
      url,
      requests: [
        {
          method: 'POST',
          path: '/api/auth/token/login',
          setupRequest: (request) => ({
            ...request,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ email: users[next++ % users.length], password: PASSWORD }),
          }),
        },
      ],
    });
  }
  if (SCENARIO === 'bearer' || SCENARIO === 'cookie') {
    const headers = [];
    for (const email of users) {
      if (SCENARIO === 'bearer') {
        const { body } = await post(url, '/api/auth/token/login', { email, password: PASSWORD });
        headers.push({ authorization: `Bearer ${body.accessToken}` });
      } else {
        const { response } = await post(url, '/api/auth/session/login', { email, password: PASSWORD });
        const cookie = response.headers
          .getSetCookie()
          .map((line) => line.split(';')[0])
          .find((pair) => pair.startsWith('sid='));
        headers.push({ cookie });
      }
    }
    return async () => rotating(url, headers);
  }
  const shared = SCENARIO === 'refresh-shared';
  return async () => {
    const idle = [];
    for (let i = 0; i < (shared ? 100 : CONNECTIONS); i += 1) {
      const { body } = await post(url, '/api/auth/token/login', {
        email: users[i % users.length],
        password: PASSWORD,
      });
      idle.push({ token: body.refreshToken });
    }
    return refreshing(url, idle, shared);
  };
}

function rotating(url, headers) {
  let next = 0;
  return {
    url,
    requests: [
      {
        path: '/api/me',
        setupRequest: (request) => ({
          ...request,
          headers: { ...request.headers, ...headers[next++ % headers.length] },
        }),
      },
    ],
  };
}

/** As bench/run.mjs: each request takes the family that waited longest and presents its live token. */
function refreshing(url, idle, addresses) {
  let address = 0;
  return {
    url,
    requests: [
      {
        method: 'POST',
        path: '/api/auth/token/refresh',
        setupRequest(request, context) {
          context.family = idle.shift();
          address = (address + 1) % 2000;
          return {
            ...request,
            headers: {
              'content-type': 'application/json',
              ...(addresses
                ? { 'x-forwarded-for': `10.${address >> 16}.${(address >> 8) & 255}.${address & 255}` }
                : {}),
            },
            body: JSON.stringify({ refreshToken: context.family.token }),
          };
        },
        onResponse(status, body, context) {
          if (status === 200) context.family.token = JSON.parse(body).refreshToken;
          idle.push(context.family);
        },
      },
    ],
  };
}

async function post(url, path, body) {
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${text}`);
  return { response, body: text ? JSON.parse(text) : undefined };
}

/** Only the samples taken during the measured load: start-up and the warm-up are left out. */
function measured(profile, { start, end, exit }) {
  const from = profile.endTime - (exit - start) * 1000;
  const to = profile.endTime - (exit - end) * 1000;
  const samples = [];
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    at += profile.timeDeltas[i];
    if (at >= from && at <= to) samples.push(id);
  });
  return samples;
}

function report(profile, window) {
  profile.samples = measured(profile, window);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const byPackage = new Map();
  const byFunction = new Map();
  let idle = 0;
  for (const id of profile.samples) {
    const frame = byId.get(id).callFrame;
    if (frame.functionName === '(idle)') {
      idle += 1;
      continue;
    }
    const where = bucket(frame);
    byPackage.set(where, (byPackage.get(where) ?? 0) + 1);
    const fn = `${frame.functionName || '(anonymous)'} ${where}:${frame.lineNumber + 1}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + 1);
  }
  const busy = profile.samples.length - idle;
  console.log(`\n${busy} busy samples, ${idle} idle (shares below are of the busy ones)`);
  const table = (title, counts, rows) => {
    console.log(`\n| ${title} | share of CPU samples |`);
    console.log('| --- | ---: |');
    for (const [where, count] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, rows))
      console.log(`| ${where} | ${((100 * count) / busy).toFixed(1)}% |`);
  };
  table('where', byPackage, 30);
  table('function (self time)', byFunction, 30);

  // Inclusive time of the service's own functions: each sample counts once for every one of them on its stack.
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const inclusive = new Map();
  for (const id of profile.samples) {
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at).callFrame;
      if (!frame.url.includes('/dist/src/')) continue;
      const fn = `${frame.functionName || '(anonymous)'} ${bucket(frame)}:${frame.lineNumber + 1}`;
      if (seen.has(fn)) continue;
      seen.add(fn);
      inclusive.set(fn, (inclusive.get(fn) ?? 0) + 1);
    }
  }
  table("the service's functions (inclusive)", inclusive, 30);
}

function bucket({ url, functionName }) {
  if (!url) return functionName ? `(${functionName})` : '(native)';
  const modules = url.split('node_modules/');
  if (modules.length > 1) {
    const parts = modules.at(-1).split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  if (url.startsWith('node:')) return url;
  return url.slice(url.indexOf('dist/') >= 0 ? url.indexOf('dist/') : 0);
}
