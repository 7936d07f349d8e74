// npm run bench: builds the service, starts it against PostgreSQL and Redis pinned to core 0, drives it with
// autocannon from this process pinned to core 1, and prints a table of req/s, p50 and p99 with each
// scenario's ratio to a bound measured in the same run. Writes bench/results/<timestamp>.json.
//
// Bounds: a bare NestJS application with one route (bench/bare-nest.mjs) for GET /health/live; GET
// /health/live (no authentication, no I/O: the service's own platform) for the read routes and refresh;
// in-process bcrypt comparisons at the same cost and concurrency for login. Every scenario runs
// BENCH_ROUNDS times, taking turns with its bound, and is reported from its median round; the targets
// are checked on those ratios and printed met or missed.
// A scenario with more than 1% non-2xx answers (or none at all) is reported invalid, not as a rate.
//
// Environment: BENCH_DATABASE_URL (an admin URL; a database is created and dropped per server),
// BENCH_REDIS_URL, BENCH_SECONDS (per scenario and round, default 10), BENCH_ROUNDS (rounds of the read
// scenarios, default 3), BENCH_CONNECTIONS (default 32), BENCH_BCRYPT_COST (default 10),
// BENCH_REFRESH_FAMILIES (families shared by the connections in the second refresh scenario, default 100),
// BENCH_SERVICE_DIR (a built checkout to measure instead of this one, for before/after comparisons; it
// must have run `npm run build`), BENCH_ALGORITHMS (default ES256,HS256), BENCH_ONLY=reads (only the
// read scenarios and their bound: a quick before/after of GET /api/me), BENCH_ONLY=refresh (only the
// ES256 refresh scenarios and their bound) or BENCH_ONLY=revocation (only the race of a revocation on one
// instance against requests on another).
import autocannon from 'autocannon';
import bcrypt from 'bcrypt';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { createClient } from 'redis';
import {
  ADMIN_URL,
  cpuMs,
  createStorage,
  LOAD_CORE,
  onLoadCore,
  PASSWORD,
  post,
  REDIS_URL,
  SERVICE_CORE,
  SERVICE_DIR,
  sessionCookieOf,
  startService,
} from './lib.mjs';

const DURATION = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const COST = Number(process.env.BENCH_BCRYPT_COST ?? 10);
const ISSUER = 'https://auth.example.com';
/** Requests sent one at a time while counting store round trips; small enough to leave no doubt. */
const SAMPLE = 200;
/** PostgreSQL 15 backends flush their statistics at most every 10 s when idle. */
const PG_STATS_FLUSH_MS = 11_000;
const LATENCY_SAMPLES = 30;
/** Rounds of the read scenarios, each with its own bound measurement. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SHARED_FAMILIES = Number(process.env.BENCH_REFRESH_FAMILIES ?? 100);
/** Client addresses the shared-families refresh scenario rotates through in X-Forwarded-For. */
const CLIENT_ADDRESSES = 2000;
const WARM_UP_SECONDS = 3;
const ONLY_READS = process.env.BENCH_ONLY === 'reads';
const ONLY_REFRESH = process.env.BENCH_ONLY === 'refresh';
const ONLY_REVOCATION = process.env.BENCH_ONLY === 'revocation';
const ALGORITHMS = (
  process.env.BENCH_ALGORITHMS ?? (ONLY_REFRESH || ONLY_REVOCATION ? 'ES256' : 'ES256,HS256')
).split(',');
/** Long enough for two instances to hear each other's revocation probes (one every 2 s). */
const PEERS_MEET_MS = 2500;
/** The service process being measured, for its CPU time. */
let measuredPid;

if (cpus().length < 2)
  throw new Error('the benchmark needs two cores: one for the service, one for the load');
await onLoadCore(main);

async function main() {
  const results = {
    at: new Date().toISOString(),
    host: { cpus: cpus().length, model: cpus()[0]?.model, loadAverageAtStart: loadAverage() },
    settings: {
      durationSeconds: DURATION,
      connections: CONNECTIONS,
      bcryptCost: COST,
      serverCore: SERVICE_CORE,
      clientCore: LOAD_CORE,
      service: SERVICE_DIR,
      commit: commitOf(SERVICE_DIR),
    },
    scenarios: {},
    perRequest: {},
    sizes: {},
    revocation: {},
  };
  const redis = createClient({ url: REDIS_URL });
  await redis.connect();
  const bare = await startBare();

  for (const algorithm of ALGORITHMS) {
    const storage = await createStorage('bench');
    const server = await startServer(storage, algorithm);
    measuredPid = server.pid;
    let second;
    try {
      if (ONLY_REVOCATION) {
        second = await startServer(storage, algorithm);
        await sleep(PEERS_MEET_MS);
        results.revocation = await revocationLatency(server, second, redis, storage);
        continue;
      }
      const users = await makeUsers(server.url, CONNECTIONS);
      const bearerHeaders = users.map((user) => ({ authorization: `Bearer ${user.accessToken}` }));
      // Not recorded: lets the JIT and the caches settle before anything is measured.
      await autocannon({
        url: `${server.url}/health/live`,
        connections: CONNECTIONS,
        duration: WARM_UP_SECONDS,
      });
      await autocannon({
        ...rotating(server.url, '/api/me', bearerHeaders),
        connections: CONNECTIONS,
        duration: WARM_UP_SECONDS,
      });
      const reads = [
        [`me-bearer-${algorithm}`, `${algorithm}: GET /api/me, bearer`, bearerHeaders],
        ...(algorithm === 'ES256'
          ? [
              [
                'me-session',
                'ES256: GET /api/me, session cookie',
                users.map((user) => ({ cookie: user.cookie })),
              ],
            ]
          : []),
      ];
      // The bound and the routes it bounds take turns, so a change in what the shared machine gives us
      // moves both; each is reported from its median round.
      const rounds = [];
      for (let round = 0; round < (ONLY_REFRESH ? 0 : ROUNDS); round += 1) {
        const framework = await run(`${algorithm} run: bare NestJS, one route (bound)`, {
          url: `${bare.url}/health/live`,
        });
        const bound = await run(
          `${algorithm}: GET /health/live`,
          { url: `${server.url}/health/live` },
          framework,
        );
        const row = { [`bare-${algorithm}`]: framework, [`health-${algorithm}`]: bound };
        for (const [key, name, headers] of reads) {
          row[key] = await run(name, rotating(server.url, '/api/me', headers), bound);
        }
        rounds.push(row);
      }
      for (const key of Object.keys(rounds[0] ?? {})) {
        results.scenarios[key] = medianRound(rounds.map((row) => row[key]));
      }
      results.sizes[`accessToken${algorithm}Bytes`] = users[0].accessToken.length;
      if (algorithm !== 'ES256' || ONLY_READS) continue;

      const logins = [];
      for (let round = 0; round < (ONLY_REFRESH ? 0 : ROUNDS); round += 1) {
        const bound = await bcryptBound(CONNECTIONS);
        await scrapeEventLoopP99(server.url); // resets the service's event-loop histogram
        const login = await run(
          'ES256: POST /api/auth/token/login',
          rotating(
            server.url,
            '/api/auth/token/login',
            users.map(() => ({ 'content-type': 'application/json' })),
            'POST',
            users.map((user) => JSON.stringify({ email: user.email, password: PASSWORD })),
          ),
          bound,
        );
        login.eventLoopDelayP99Ms = await scrapeEventLoopP99(server.url);
        logins.push({ 'bcrypt-bound': bound, 'token-login': login });
        // Logins still queued for bcrypt when the load stopped would otherwise run into the next scenario.
        await sleep(3000);
      }
      for (const key of Object.keys(logins[0] ?? {}))
        results.scenarios[key] = medianRound(logins.map((row) => row[key]));
      if (logins.length > 0) {
        results.scenarios['token-login'].eventLoopDelayP99Ms = Math.max(
          ...logins.map((row) => row['token-login'].eventLoopDelayP99Ms ?? 0),
        );
      }

      const refreshes = [];
      for (let round = 0; round < ROUNDS; round += 1) {
        const own = await freshFamilies(server.url, users, users.length);
        const shared = await freshFamilies(server.url, users, SHARED_FAMILIES);
        const bound = await run('ES256: GET /health/live (refresh bound)', {
          url: `${server.url}/health/live`,
        });
        refreshes.push({
          'refresh-health': bound,
          refresh: await runRefresh(server.url, own, {
            name: 'ES256: POST /api/auth/token/refresh, a family per connection',
            bound,
          }),
          'refresh-shared': await runRefresh(server.url, shared, {
            name: `ES256: POST /api/auth/token/refresh, ${SHARED_FAMILIES} families in turn, rotating client addresses`,
            bound,
            addresses: true,
          }),
        });
      }
      for (const key of Object.keys(refreshes[0]))
        results.scenarios[key] = medianRound(refreshes.map((row) => row[key]));
      const halfRate = Math.max(
        1,
        Math.round((results.scenarios.refresh.rps ?? results.scenarios['refresh-shared'].rps ?? 0) / 2),
      );
      const atRate = [];
      for (let round = 0; round < ROUNDS; round += 1) {
        atRate.push(
          await runRefreshAtRate(server.url, await freshFamilies(server.url, users, SHARED_FAMILIES), {
            name: `ES256: POST /api/auth/token/refresh at half its maximum, ${halfRate}/s, evenly spaced`,
            rate: halfRate,
          }),
        );
      }
      results.scenarios['refresh-at-rate'] = medianRound(atRate);
      if (ONLY_REFRESH) continue;

      const fresh = await makeUsers(server.url, 1);
      results.perRequest.bearer = await storeTrips(server, redis, storage, {
        authorization: `Bearer ${fresh[0].accessToken}`,
      });
      results.perRequest.session = await storeTrips(server, redis, storage, { cookie: fresh[0].cookie });
      Object.assign(results.sizes, await sizes(redis, server, storage, fresh[0]));

      second = await startServer(storage, algorithm);
      await sleep(PEERS_MEET_MS);
      results.revocation = await revocationLatency(server, second, redis, storage);
    } finally {
      await second?.stop();
      await server.stop();
      await storage.drop(redis);
    }
  }
  await bare.stop();
  await redis.close();
  results.host.loadAverageAtEnd = loadAverage();
  results.targets = targets(results);
  printReport(results);
  mkdirSync('bench/results', { recursive: true });
  const file = `bench/results/${results.at.replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nwritten: ${file}`);
}

function commitOf(directory) {
  try {
    return execFileSync('git', ['-C', directory, 'rev-parse', '--short', 'HEAD'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .toString()
      .trim();
  } catch {
    return process.env.BENCH_SERVICE_COMMIT ?? 'unknown';
  }
}

function loadAverage() {
  return execFileSync('cat', ['/proc/loadavg']).toString().split(' ').slice(0, 3).map(Number);
}

/** An instance of the service on the storage, pinned to the service's core. */
function startServer(storage, algorithm) {
  return startService({
    databaseUrl: storage.databaseUrl,
    prefix: storage.prefix,
    core: SERVICE_CORE,
    env: { JWT_ALGORITHM: algorithm, JWT_ISSUER: ISSUER, BCRYPT_COST: String(COST) },
  });
}

/** The bare NestJS application of bench/bare-nest.mjs, on the service's core. */
async function startBare() {
  const port = 3800 + Math.floor(Math.random() * 90);
  const child = spawn('taskset', ['-c', SERVICE_CORE, process.execPath, 'bench/bare-nest.mjs'], {
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i += 1) {
    try {
      if ((await fetch(`${url}/health/live`)).ok) break;
    } catch {}
    if (i > 100) throw new Error('the bare NestJS application did not start');
    await sleep(100);
  }
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

async function makeUsers(url, count) {
  const users = [];
  for (let i = 0; i < count; i += 1) {
    const email = `bench.${i}.${randomBytes(4).toString('hex')}@example.com`;
    await post(url, '/api/auth/register', { email, password: PASSWORD });
    const token = await post(url, '/api/auth/token/login', { email, password: PASSWORD });
    const session = await post(url, '/api/auth/session/login', { email, password: PASSWORD });
    const cookie = sessionCookieOf(session.response);
    const { csrfToken } = session.body;
    users.push({
      id: token.body.user.id,
      email,
      accessToken: token.body.accessToken,
      refreshToken: token.body.refreshToken,
      cookie,
      csrfToken,
    });
  }
  return users;
}

/** Options that spread requests over every user's credentials, one after another per connection. */
function rotating(url, path, headers, method = 'GET', bodies) {
  let next = 0;
  return {
    url,
    requests: [
      {
        method,
        path,
        setupRequest(request) {
          const i = next++ % headers.length;
          return {
            ...request,
            headers: { ...request.headers, ...headers[i] },
            ...(bodies ? { body: bodies[i] } : {}),
          };
        },
      },
    ],
  };
}

function summarize(name, result, bound) {
  const total = result.requests.sent ?? result.requests.total;
  const ok = result['2xx'];
  const failed = result.non2xx + result.errors + result.timeouts;
  const valid = ok > 0 && failed <= Math.max(ok + failed, 1) * 0.01;
  const summary = {
    name,
    sent: total,
    ok,
    failed,
    failures: {
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      statusCodes: Object.fromEntries(
        Object.entries(result.statusCodeStats ?? {}).map(([code, stats]) => [code, stats.count]),
      ),
    },
    valid,
    rps: valid ? Math.round(ok / result.duration) : null,
    // Unrounded, for ratios: at a few logins a second, whole requests per second would move them by 20%.
    rate: valid ? ok / result.duration : null,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
  };
  if (valid && bound?.rate) summary.ratio = Number((summary.rate / bound.rate).toFixed(3));
  if (valid && bound?.name) summary.boundedBy = bound.name;
  return summary;
}

/** One scenario over its rounds: median rate, latencies and ratio; every round is kept in the JSON. */
function medianRound(rounds) {
  const median = (values) => {
    const sorted = values.filter((value) => typeof value === 'number').sort((a, b) => a - b);
    return sorted.length === 0 ? undefined : sorted[Math.floor((sorted.length - 1) / 2)];
  };
  const sum = (field) => rounds.reduce((total, round) => total + (round[field] ?? 0), 0);
  const valid = rounds.every((round) => round.valid);
  return {
    name: rounds[0].name,
    sent: sum('sent'),
    ok: sum('ok'),
    failed: sum('failed'),
    valid,
    rps: valid ? median(rounds.map((round) => round.rps)) : null,
    p50Ms: median(rounds.map((round) => round.p50Ms)),
    p99Ms: median(rounds.map((round) => round.p99Ms)),
    cpuUsPerRequest: median(rounds.map((round) => round.cpuUsPerRequest)),
    serviceP99Ms: median(rounds.map((round) => round.serviceP99Ms)),
    mainThread: rounds[0].mainThread && {
      ranMsPerSecond: median(rounds.map((round) => round.mainThread.ranMsPerSecond)),
      waitedMsPerSecond: median(rounds.map((round) => round.mainThread.waitedMsPerSecond)),
    },
    ...(valid && rounds[0].ratio !== undefined
      ? { ratio: median(rounds.map((round) => round.ratio)), boundedBy: rounds[0].boundedBy }
      : {}),
    rounds: rounds.map(
      ({ rps, p50Ms, p99Ms, serviceP99Ms, mainThread, ratio, failed, failures, cpuUsPerRequest }) => ({
        rps,
        p50Ms,
        p99Ms,
        serviceP99Ms,
        mainThread,
        ratio,
        failed,
        failures,
        cpuUsPerRequest,
      }),
    ),
  };
}

/**
 * The main thread's time on its core and its time runnable but waiting for it (/proc/<pid>/schedstat): a
 * latency tail with the core far from busy yet a long wait says the core was taken by something else.
 */
function schedstat(pid) {
  const [ranNs, waitedNs] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ').map(Number);
  return { ranNs, waitedNs };
}

async function run(name, options, bound) {
  const before = measuredPid ? cpuMs(measuredPid) : undefined;
  const result = await autocannon({ connections: CONNECTIONS, duration: DURATION, ...options });
  const summary = summarize(name, result, bound);
  // The service's CPU per answered request: unlike req/s, it hardly moves when other work shares the core.
  if (before !== undefined && summary.sent) {
    summary.cpuUsPerRequest = Math.round(((cpuMs(measuredPid) - before) * 1000) / summary.sent);
  }
  return summary;
}

/** New families, taking the users in turn: a refresh scenario that stops mid-request leaves its own unusable. */
async function freshFamilies(url, users, count) {
  const tokens = [];
  for (let i = 0; i < count; i += 1) {
    const user = users[i % users.length];
    const login = await post(url, '/api/auth/token/login', { email: user.email, password: PASSWORD });
    tokens.push(login.body.refreshToken);
  }
  return tokens;
}

/**
 * Refresh with a pool of families: each request takes the family that has waited longest (never one with a
 * refresh in flight) and presents its current token, so every request is a real rotation. As many families
 * as connections is a family per connection; more are clients behind a proxy, each request then naming a
 * client address of its own in X-Forwarded-For (`addresses`; the service runs with TRUST_PROXY=1) so that
 * rate-limit keys spread too.
 */
async function runRefresh(url, refreshTokens, { name, bound, addresses = false }) {
  // Kept here, not in autocannon's per-connection context, which it resets after every request when the
  // request list has one entry: kept there, each request presented a login's first token again (a replay).
  const idle = refreshTokens.map((token) => ({ token }));
  let address = 0;
  const before = cpuMs(measuredPid);
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: DURATION,
    requests: [
      {
        method: 'POST',
        path: '/api/auth/token/refresh',
        setupRequest(request, context) {
          context.family = idle.shift();
          address += 1;
          return {
            ...request,
            headers: {
              'content-type': 'application/json',
              ...(addresses ? { 'x-forwarded-for': clientAddress(address) } : {}),
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
  });
  const summary = summarize(name, result, bound);
  if (summary.sent)
    summary.cpuUsPerRequest = Math.round(((cpuMs(measuredPid) - before) * 1000) / summary.sent);
  return summary;
}

/** One of CLIENT_ADDRESSES client addresses, by turn. */
function clientAddress(turn) {
  const address = turn % CLIENT_ADDRESSES;
  return `10.${address >> 16}.${(address >> 8) & 255}.${address & 255}`;
}

/**
 * Refresh at a fixed rate with evenly spaced arrivals. autocannon's rate limit lets each connection send its
 * whole second's budget as fast as it can at the top of every second, so its fixed rate is a burst at full
 * concurrency once a second, and its latencies those of a saturated service. Here request i is sent at
 * i / rate seconds, whatever the answers before it, and its latency counts from then, so a service that
 * falls behind cannot hide the backlog. Families and client addresses rotate as in the shared-families
 * scenario; a request that finds every family busy is counted as failed.
 */
async function runRefreshAtRate(url, refreshTokens, { name, rate }) {
  const idle = refreshTokens.map((token) => ({ token }));
  const latencies = [];
  const statusCodes = {};
  let errors = 0;
  const before = cpuMs(measuredPid);
  const servedBefore = await refreshDurations(url);
  const scheduledBefore = schedstat(measuredPid);
  const start = performance.now();
  const answers = [];
  for (let i = 0; i < Math.round(rate * DURATION); i += 1) {
    const due = start + (i * 1000) / rate;
    if (due - performance.now() > 1) await sleep(due - performance.now());
    const family = idle.shift();
    if (!family) {
      errors += 1;
      continue;
    }
    answers.push(
      fetch(`${url}/api/auth/token/refresh`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': clientAddress(i) },
        body: JSON.stringify({ refreshToken: family.token }),
      })
        .then(async (response) => {
          const body = await response.text();
          latencies.push(performance.now() - due);
          statusCodes[response.status] = (statusCodes[response.status] ?? 0) + 1;
          if (response.ok) family.token = JSON.parse(body).refreshToken;
        })
        .catch(() => {
          errors += 1;
        })
        .finally(() => idle.push(family)),
    );
  }
  await Promise.all(answers);
  const sorted = latencies.sort((a, b) => a - b);
  const at = (share) => Number((sorted[Math.floor(share * (sorted.length - 1))] ?? 0).toFixed(1));
  const ok = Object.entries(statusCodes).reduce(
    (sum, [code, count]) => sum + (Number(code) < 300 ? count : 0),
    0,
  );
  const summary = summarize(name, {
    requests: { sent: answers.length + errors },
    '2xx': ok,
    non2xx: latencies.length - ok,
    errors,
    timeouts: 0,
    statusCodeStats: Object.fromEntries(
      Object.entries(statusCodes).map(([code, count]) => [code, { count }]),
    ),
    duration: DURATION,
    latency: { p50: at(0.5), p99: at(0.99) },
  });
  if (summary.sent)
    summary.cpuUsPerRequest = Math.round(((cpuMs(measuredPid) - before) * 1000) / summary.sent);
  const seconds = (performance.now() - start) / 1000;
  const scheduled = schedstat(measuredPid);
  summary.mainThread = {
    ranMsPerSecond: Math.round((scheduled.ranNs - scheduledBefore.ranNs) / 1e6 / seconds),
    waitedMsPerSecond: Math.round((scheduled.waitedNs - scheduledBefore.waitedNs) / 1e6 / seconds),
  };
  summary.serviceP99Ms = histogramP99Ms(servedBefore, await refreshDurations(url));
  return summary;
}

/** The service's own histogram of 200 refreshes (`le` in seconds → cumulative count), from /metrics. */
async function refreshDurations(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const buckets = new Map();
  const pattern =
    /^http_request_duration_seconds_bucket\{(?=[^}]*route="\/api\/auth\/token\/refresh")(?=[^}]*status="200")(?=[^}]*le="([^"]+)")[^}]*\} (\d+)/gm;
  for (const [, le, count] of text.matchAll(pattern)) buckets.set(le, Number(count));
  return buckets;
}

/**
 * The upper bound of the bucket holding the 99th percentile of the refreshes answered between two scrapes:
 * the latency the service itself measured, from the request's arrival to its answer, without the time the
 * load generator or the network added.
 */
function histogramP99Ms(before, after) {
  const counts = [...after].map(([le, count]) => [le, count - (before.get(le) ?? 0)]);
  const total = counts.find(([le]) => le === '+Inf')?.[1] ?? 0;
  const bucket = counts.find(([, count]) => count >= total * 0.99);
  return total && bucket ? (bucket[0] === '+Inf' ? Infinity : Number(bucket[0]) * 1000) : undefined;
}

async function bcryptBound(concurrency) {
  const input = createHash('sha384').update(PASSWORD).digest('base64');
  const hash = await bcrypt.hash(input, COST);
  const started = Date.now();
  const deadline = started + DURATION * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < deadline) {
        await bcrypt.compare(input, hash);
        done += 1;
      }
    }),
  );
  const rate = done / ((Date.now() - started) / 1000);
  return {
    rate,
    rps: Math.round(rate),
    name: `bcrypt compare in-process, cost ${COST}, ${concurrency} at once, one core (bound)`,
    valid: true,
  };
}

/**
 * Store round trips of one request: PostgreSQL transactions of the service's own database (from its
 * statistics, flushed by then) and Redis commands under its key prefix (MONITOR, only during the sample).
 */
async function storeTrips(server, redis, storage, headers) {
  await fetchOk(`${server.url}/api/me`, headers); // warm the caches
  // The service's own background work (the mail outbox's poll, the key reload) commits transactions too:
  // its rate over an idle window is taken off the count.
  const idleFrom = await databaseTransactions(storage);
  const transactionsBefore = await databaseTransactions(storage);
  const background = (transactionsBefore.n - idleFrom.n) / (transactionsBefore.at - idleFrom.at);
  const lookupsBefore = await cacheLookups(server.url);
  const monitor = redis.duplicate();
  await monitor.connect();
  let redisCommands = 0;
  await monitor.monitor((line) => {
    // Heartbeat probes of the revocation subscription are the service's, not the request's.
    if (line.includes(`"${storage.prefix}`) && !/"publish"/i.test(line)) redisCommands += 1;
  });
  for (let i = 0; i < SAMPLE; i += 1) await fetchOk(`${server.url}/api/me`, headers);
  await sleep(200);
  await monitor.close();
  const lookupsAfter = await cacheLookups(server.url);
  const transactionsAfter = await databaseTransactions(storage);
  const transactions = Math.max(
    0,
    transactionsAfter.n - transactionsBefore.n - background * (transactionsAfter.at - transactionsBefore.at),
  );
  const lookups = Object.fromEntries(
    Object.keys(lookupsAfter).map((result) => [
      result,
      round((lookupsAfter[result] - (lookupsBefore[result] ?? 0)) / SAMPLE),
    ]),
  );
  return {
    requests: SAMPLE,
    databaseTransactions: round(transactions / SAMPLE),
    redisCommands: round(redisCommands / SAMPLE),
    revocationCacheLookups: lookups,
    requestHeaderBytes: Object.entries(headers).reduce(
      (sum, [name, value]) => sum + name.length + 2 + value.length,
      0,
    ),
  };
}

async function fetchOk(url, headers) {
  const response = await fetch(url, { headers });
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
}

async function databaseTransactions(storage) {
  await sleep(PG_STATS_FLUSH_MS);
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  const { rows } = await client.query(
    'SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = $1',
    [storage.name],
  );
  await client.end();
  // This query's own connection is to the admin database, so it does not count itself.
  return { n: Number(rows[0].n), at: performance.now() };
}

async function cacheLookups(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const lookups = {};
  for (const match of text.matchAll(/^revocation_cache_lookups_total\{result="(\w+)"\} (\d+)/gm))
    lookups[match[1]] = Number(match[2]);
  return lookups;
}

async function sizes(redis, server, storage, user) {
  const sessionKey = await sessionKeyOf(redis, storage, user);
  const indexKey = `${storage.prefix}user-sessions:{${user.id}}`;
  const indexOne = await memoryUsage(redis, indexKey);
  // A second session of the same user: what one more index entry costs.
  await fetch(`${server.url}/api/auth/session/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: user.email, password: PASSWORD }),
  });
  const indexTwo = await memoryUsage(redis, indexKey);
  return {
    sessionCookieBytes: user.cookie.length,
    sessionCookieHeaderBytes: 'cookie: '.length + user.cookie.length,
    bearerHeaderBytes: 'authorization: Bearer '.length + user.accessToken.length,
    redisSessionValueBytes: (await redis.get(sessionKey))?.length,
    redisSessionMemoryUsageBytes: await memoryUsage(redis, sessionKey),
    redisIndexMemoryUsageOneEntryBytes: indexOne,
    redisIndexEntryBytes: indexTwo - indexOne,
    accessTokenClaims: JSON.parse(Buffer.from(user.accessToken.split('.')[1], 'base64url').toString()),
    accessTokenHeader: JSON.parse(Buffer.from(user.accessToken.split('.')[0], 'base64url').toString()),
  };
}

async function sessionKeyOf(redis, storage, user) {
  const [sid] = Object.values(await redis.hGetAll(`${storage.prefix}user-sessions:{${user.id}}`));
  if (!sid) throw new Error('session not found in the index');
  return `${storage.prefix}sess:${sid}`;
}

function memoryUsage(redis, key) {
  return redis.sendCommand(['MEMORY', 'USAGE', key, 'SAMPLES', '0']).then(Number);
}

/**
 * How long after a revoking request returns on one instance another instance still accepts the revoked
 * credential: a client polls instance B with it while revoking on instance A, and the last request B
 * accepted is compared with the revoking response. Also the time until an extra Redis subscriber hears
 * the invalidation. Negative: before the revoking response.
 */
async function revocationLatency(a, b, redis, storage) {
  const subscriber = redis.duplicate();
  await subscriber.connect();
  const heard = [];
  await subscriber.subscribe(`${storage.prefix}revocations`, (message) => {
    if (message.includes('changed')) heard.push(performance.now());
  });
  const samples = { token: [], session: [] };
  for (let i = 0; i < LATENCY_SAMPLES; i += 1) {
    const [user] = await makeUsers(a.url, 1);
    for (const method of ['token', 'session']) {
      const headers =
        method === 'token' ? { authorization: `Bearer ${user.accessToken}` } : { cookie: user.cookie };
      samples[method].push(await race(a, b, headers, method, user, heard));
    }
  }
  await subscriber.close();
  const describe = (list, field) => {
    const values = list
      .map((sample) => sample[field])
      .filter((value) => value !== undefined)
      .sort((x, y) => x - y);
    return { median: round(values[Math.floor(values.length / 2)]), max: round(values.at(-1)) };
  };
  return Object.fromEntries(
    Object.entries(samples).map(([method, list]) => [
      method,
      {
        samples: list.length,
        lastAcceptedRequestSentAfterRevokeMs: describe(list, 'lastAccepted'),
        firstRefusedAnswerAfterRevokeMs: describe(list, 'firstRefused'),
        invalidationHeardAfterRevokeMs: describe(list, 'heard'),
        revokingRequestMs: describe(list, 'revoking'),
        acceptedAfterRevokeResponse: list.filter((sample) => sample.lastAccepted > 0).length,
      },
    ]),
  );
}

async function race(a, b, headers, method, user, heard) {
  await fetchOk(`${b.url}/api/me`, headers);
  let stop = false;
  let lastAcceptedSentAt = -Infinity;
  let firstRefusedAt;
  const poller = (async () => {
    while (!stop) {
      const sentAt = performance.now();
      const response = await fetch(`${b.url}/api/me`, { headers });
      await response.arrayBuffer();
      if (response.status === 200) lastAcceptedSentAt = sentAt;
      else {
        firstRefusedAt ??= performance.now();
        stop = true;
      }
    }
  })();
  await sleep(5);
  const heardBefore = heard.length;
  const revokeSentAt = performance.now();
  // Token: logout of its family (a cached fact). Session: logout-all, which moves the user's stamp first.
  if (method === 'token')
    await post(a.url, '/api/auth/token/logout', { refreshToken: user.refreshToken }, headers);
  else await post(a.url, '/api/me/logout-all', undefined, { ...headers, 'x-csrf-token': user.csrfToken });
  const revokedAt = performance.now();
  for (let i = 0; i < 200 && !stop; i += 1) await sleep(5);
  stop = true;
  await poller;
  return {
    lastAccepted: lastAcceptedSentAt - revokedAt,
    firstRefused: firstRefusedAt === undefined ? undefined : firstRefusedAt - revokedAt,
    heard: heard.length > heardBefore ? heard[heardBefore] - revokedAt : undefined,
    revoking: revokedAt - revokeSentAt,
  };
}

async function scrapeEventLoopP99(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const match = /^nodejs_eventloop_lag_p99_seconds\S* ([\d.e+-]+)/m.exec(text);
  return match ? round(Number(match[1]) * 1000) : undefined;
}

function round(value) {
  return value === undefined || Number.isNaN(value) ? undefined : Number(value.toFixed(3));
}

/** The performance issue's targets, each against the median round of this run. */
function targets(results) {
  const { scenarios: at, sizes } = results;
  const atLeast = (name, measured, target) => ({
    name,
    measured,
    target: `≥ ${target}`,
    met: measured >= target,
    short: target - measured,
  });
  const atMost = (name, measured, target, unit = '') => ({
    name,
    measured,
    target: `≤ ${target}${unit}`,
    met: measured <= target,
    over: measured - target,
  });
  const list = [];
  for (const algorithm of ALGORITHMS) {
    list.push(atLeast(`${algorithm}: GET /health/live / bare NestJS`, at[`health-${algorithm}`]?.ratio, 0.8));
    list.push(
      atLeast(
        `${algorithm}: bearer GET /api/me / GET /health/live`,
        at[`me-bearer-${algorithm}`]?.ratio,
        0.9,
      ),
    );
  }
  list.push(atLeast('cookie GET /api/me / GET /health/live', at['me-session']?.ratio, 0.9));
  list.push(atLeast('token login / bcrypt bound', at['token-login']?.ratio, 0.9));
  list.push(atLeast('refresh, a family per connection / GET /health/live', at.refresh?.ratio, 0.35));
  list.push(
    atLeast(
      `refresh, ${SHARED_FAMILIES} families in turn / GET /health/live`,
      at['refresh-shared']?.ratio,
      0.35,
    ),
  );
  list.push(atMost(`refresh p99 at half its maximum rate (ms)`, at['refresh-at-rate']?.p99Ms, 20, ' ms'));
  list.push(atMost('Redis MEMORY USAGE per session (B)', sizes.redisSessionMemoryUsageBytes, 400, ' B'));
  list.push(atMost('access token, ES256 (B)', sizes.accessTokenES256Bytes, 512, ' B'));
  list.push(atMost('access token, HS256 (B)', sizes.accessTokenHS256Bytes, 512, ' B'));
  return list.map((target) => ({ ...target, met: typeof target.measured === 'number' && target.met }));
}

function printReport(results) {
  console.log(
    '\n| scenario | req/s | p50 ms | p99 ms | ratio to bound | each round | CPU µs/request | failed | valid |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |');
  for (const row of Object.values(results.scenarios)) {
    const rounds = row.rounds?.map((round) => round.ratio ?? round.rps).join(', ') ?? '';
    console.log(
      `| ${row.name} | ${row.valid ? row.rps : 'invalid'} | ${row.p50Ms ?? ''} | ${row.p99Ms ?? ''} | ${row.ratio ?? ''} | ${rounds} | ${row.cpuUsPerRequest ?? ''} | ${row.failed ?? ''} | ${row.valid} |`,
    );
  }
  const login = results.scenarios['token-login'];
  if (login)
    console.log(
      `\nevent-loop delay p99 during the login scenario (worst round): ${login.eventLoopDelayP99Ms} ms`,
    );
  const atRate = results.scenarios['refresh-at-rate'];
  if (atRate)
    console.log(
      `\nrefresh at half its maximum, p99 as the service measured it (its histogram's bucket): ` +
        `${atRate.serviceP99Ms} ms (rounds ${atRate.rounds.map((round) => round.serviceP99Ms).join(', ')}); ` +
        `its main thread ran ${atRate.mainThread?.ranMsPerSecond} ms and waited for its core ` +
        `${atRate.mainThread?.waitedMsPerSecond} ms of each second (medians)`,
    );
  console.log('\n| target | measured | wanted | met |');
  console.log('| --- | ---: | ---: | --- |');
  for (const target of results.targets) {
    const by = target.short !== undefined ? `${round(target.short)} short` : `${round(target.over)} over`;
    console.log(
      `| ${target.name} | ${target.measured ?? 'invalid'} | ${target.target} | ${target.met ? 'met' : `missed (${by})`} |`,
    );
  }
  console.log('\nper request:', JSON.stringify(results.perRequest, null, 2));
  console.log('sizes:', JSON.stringify(results.sizes, null, 2));
  console.log('revocation:', JSON.stringify(results.revocation, null, 2));
  console.log(
    'load average at start and end:',
    results.host.loadAverageAtStart,
    results.host.loadAverageAtEnd,
  );
}
