// Where GET /health/live spends the service's CPU: starts the built service (PostgreSQL and Redis, as
// `npm run bench`) under `node --cpu-prof`, loads the route for BENCH_SECONDS with 32 connections, and
// prints the share of CPU samples by package or source file (self time, so each middleware's own work).
//
//   npm run build && node bench/profile-health.mjs        BENCH_SERVICE_DIR=<a built checkout> for another build
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
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
      LOG_LEVEL: 'warn',
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
  await autocannon({ url: `${url}/health/live`, connections: 32, duration: 3 });
  const result = await autocannon({ url: `${url}/health/live`, connections: 32, duration: DURATION });
  console.log(`GET /health/live: ${Math.round(result['2xx'] / result.duration)} req/s under the profiler`);
} finally {
  child.kill('SIGINT');
  await new Promise((resolve) => child.once('exit', resolve));
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
}

const profile = JSON.parse(readFileSync(join(profileDir, readdirSync(profileDir)[0]), 'utf8'));
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const shares = new Map();
for (const id of profile.samples) {
  const where = bucket(byId.get(id).callFrame);
  shares.set(where, (shares.get(where) ?? 0) + 1);
}
const total = profile.samples.length;
console.log('| where | share of CPU samples |');
console.log('| --- | ---: |');
for (const [where, count] of [...shares].sort((a, b) => b[1] - a[1]).slice(0, 25))
  console.log(`| ${where} | ${((100 * count) / total).toFixed(1)}% |`);

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
