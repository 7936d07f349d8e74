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
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cpuMs,
  createStorage,
  onLoadCore,
  PASSWORD,
  post,
  SERVICE_CORE,
  sessionCookieOf,
  startService,
} from './lib.mjs';

const DURATION = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = 32;
const SCENARIO = process.argv[2] ?? 'health';
const SCENARIOS = ['health', 'bearer', 'cookie', 'login', 'refresh', 'refresh-shared'];
if (!SCENARIOS.includes(SCENARIO)) throw new Error(`scenario: one of ${SCENARIOS.join(', ')}`);

/** When the measured load ran, and when the service exited (the profile's end), on this process's clock. */
const window = {};

await onLoadCore(main);

async function main() {
  const storage = await createStorage('profile');
  const profileDir = mkdtempSync(join(tmpdir(), 'auth-profile-'));
  let service;
  try {
    service = await startService({
      databaseUrl: storage.databaseUrl,
      prefix: storage.prefix,
      core: SERVICE_CORE,
      nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`],
      env: { BCRYPT_COST: '4' },
    });
    const load = await scenario(service.url);
    await autocannon({ ...(await load()), connections: CONNECTIONS, duration: 3 });
    const options = await load();
    const before = cpuMs(service.pid);
    window.start = performance.now();
    const result = await autocannon({ ...options, connections: CONNECTIONS, duration: DURATION });
    window.end = performance.now();
    const cpu = cpuMs(service.pid) - before;
    const sent = result.requests.sent ?? result.requests.total;
    console.log(
      `${SCENARIO}: ${Math.round(result['2xx'] / result.duration)} req/s under the profiler, ` +
        `${result.non2xx + result.errors + result.timeouts} failed, ` +
        `${Math.round((cpu * 1000) / sent)} µs of the service's CPU per request (profiler included), ` +
        `load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
    );
  } finally {
    // SIGINT: the service shuts down and exits, and node writes the profile on the way out.
    await service?.stop('SIGINT');
    window.exit = performance.now();
    await storage.drop();
  }
  report(JSON.parse(readFileSync(join(profileDir, readdirSync(profileDir)[0]), 'utf8')), window);
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
        headers.push({ cookie: sessionCookieOf(response) });
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
