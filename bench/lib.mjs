// What the benchmark scripts share: a database and a Redis key prefix of their own, the built service
// started on them and waited for, the re-run pinned to the load's core, the service's CPU time, and JSON
// requests.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

export const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** The built checkout to measure (`npm run build` done): this one, or another for before and after. */
export const SERVICE_DIR = process.env.BENCH_SERVICE_DIR ?? process.cwd();
export const PASSWORD = 'lantern-orbit-cobalt-42';
/** The service runs on core 0 and the load on core 1, so the load generator never takes the service's core. */
export const SERVICE_CORE = '0';
export const LOAD_CORE = '1';

/**
 * Runs `main` in a copy of this process pinned to the load's core: the first call re-runs the script under
 * `taskset`, the pinned copy runs `main`.
 */
export async function onLoadCore(main) {
  if (process.env.BENCH_PINNED) return main();
  const child = spawn('taskset', ['-c', LOAD_CORE, process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_PINNED: '1' },
  });
  child.on('exit', (code) => process.exit(code ?? 1));
}

/** A database of its own on the PostgreSQL server and a Redis key prefix of its own; `drop` removes both. */
export async function createStorage(label) {
  const name = `auth_${label}_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name,
    databaseUrl: url.toString(),
    prefix: `${label}${randomBytes(4).toString('hex')}:`,
    /** `redis`: a connected client, to remove the prefix's keys; without one only the database goes. */
    async drop(redis) {
      await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      if (!redis) return;
      for await (const keys of redis.scanIterator({ MATCH: `${this.prefix}*`, COUNT: 1000 })) {
        if (keys.length) await redis.del(keys);
      }
    },
  };
}

async function adminQuery(sql) {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

/**
 * Starts the built service of SERVICE_DIR on `databaseUrl` and Redis under `prefix` (pinned to `core` when
 * given, with `nodeArgs` before the script and `env` over the defaults) and waits until it is ready. The
 * defaults lift the per-IP abuse limits, since one client address drives the scenarios and the limits
 * would measure themselves, and trust X-Forwarded-For, in which the shared-families refresh scenario names
 * its clients. `stop(signal)` waits for the process to exit (SIGINT writes a `--cpu-prof` profile).
 */
export async function startService({ databaseUrl, prefix, core, nodeArgs = [], env = {} }) {
  const port = 3900 + Math.floor(Math.random() * 90);
  const node = [process.execPath, ...nodeArgs, 'dist/src/main.js'];
  const [command, ...args] = core === undefined ? node : ['taskset', '-c', core, ...node];
  const child = spawn(command, args, {
    cwd: SERVICE_DIR,
    env: {
      ...process.env,
      NODE_ENV: 'development',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: databaseUrl,
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      LOG_LEVEL: 'warn',
      TRUST_PROXY: '1',
      REGISTER_RATE_LIMIT: '1000000',
      REFRESH_RATE_LIMIT: '1000000',
      LOGIN_IP_MAX_FAILURES: '1000000',
      LOGIN_IP_MAX_ACCOUNTS: '1000000',
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  let exited = false;
  child.once('exit', () => (exited = true));
  for (let i = 0; ; i += 1) {
    if (exited) throw new Error(`the service on port ${port} exited during start`);
    try {
      if ((await fetch(`${url}/health/ready`)).ok) break;
    } catch {}
    if (i > 150) throw new Error(`the service on port ${port} did not become ready`);
    await sleep(200);
  }
  // Ready means the database and Redis answer; the revocation cache trusts memory once its probe is back.
  await sleep(500);
  return {
    url,
    pid: child.pid,
    async stop(signal = 'SIGTERM') {
      if (exited) return;
      child.kill(signal);
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

/** utime + stime of a process, in milliseconds (USER_HZ is 100 on Linux). */
export function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** A JSON request that must succeed: `{ response, status, body }`, the body parsed. */
export async function request(url, method, path, body, headers = {}) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return { response, status: response.status, body: text ? JSON.parse(text) : undefined };
}

export function post(url, path, body, headers) {
  return request(url, 'POST', path, body, headers);
}

/** The session cookie (`sid=…`) a login response sets, whichever others (the device cookie) beside it. */
export function sessionCookieOf(response) {
  return response.headers
    .getSetCookie()
    .map((line) => line.split(';')[0])
    .find((pair) => pair.startsWith('sid='));
}
