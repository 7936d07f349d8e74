// Counts what each operation costs in store round trips: PostgreSQL round trips and statements, read off
// the wire by a proxy between the service and PostgreSQL, and Redis commands under the service's prefix
// (MONITOR). Each operation runs SAMPLE times one after another, after a warm-up, and the counts are
// divided by SAMPLE. Background work (the signing-key reload once a minute) shows as a fraction.
//
//   npm run build && node bench/round-trips.mjs
//   BENCH_SERVICE_DIR=<a built checkout> node bench/round-trips.mjs     the same for another build
//
// PostgreSQL: a round trip is one ReadyForQuery the server sends (one per simple query or per Sync of the
// extended protocol); a statement is one simple Query or one Execute the client sends.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { createClient } from 'redis';

const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SERVICE_DIR = process.env.BENCH_SERVICE_DIR ?? process.cwd();
const SAMPLE = Number(process.env.BENCH_SAMPLE ?? 50);
const PASSWORD = 'lantern-orbit-cobalt-42';

/** A TCP hop that parses the PostgreSQL protocol just enough to count messages by type. */
async function countingProxy(target) {
  const counts = { roundTrips: 0, statements: 0 };
  const server = createServer((client) => {
    const upstream = connect(target);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on(
      'data',
      messageCounter(true, (type) => {
        if (type === 'Q' || type === 'E') counts.statements += 1;
      }),
    );
    upstream.on(
      'data',
      messageCounter(false, (type) => {
        if (type === 'Z') counts.roundTrips += 1;
      }),
    );
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: server.address().port, counts, close: () => server.close() };
}

/** Splits a stream into messages (type byte, int32 length); the client's first message has no type. */
function messageCounter(untypedFirst, onMessage) {
  let buffer = Buffer.alloc(0);
  let first = untypedFirst;
  return (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      if (first) {
        if (buffer.length < 4) return;
        const length = buffer.readInt32BE(0);
        if (buffer.length < length) return;
        buffer = buffer.subarray(length);
        first = false;
        continue;
      }
      if (buffer.length < 5) return;
      const length = buffer.readInt32BE(1);
      if (buffer.length < 1 + length) return;
      onMessage(String.fromCharCode(buffer[0]));
      buffer = buffer.subarray(1 + length);
    }
  };
}

async function main() {
  const name = `auth_trips_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const adminUrl = new URL(ADMIN_URL);
  const proxy = await countingProxy({ host: adminUrl.hostname, port: Number(adminUrl.port || 5432) });
  const databaseUrl = new URL(ADMIN_URL);
  databaseUrl.host = `127.0.0.1:${proxy.port}`;
  databaseUrl.pathname = `/${name}`;
  const prefix = `trips${randomBytes(4).toString('hex')}:`;
  const port = 3990 + Math.floor(Math.random() * 9);
  const child = spawn(process.execPath, ['dist/src/main.js'], {
    cwd: SERVICE_DIR,
    env: {
      ...process.env,
      NODE_ENV: 'development',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: databaseUrl.toString(),
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      BCRYPT_COST: '4',
      LOG_LEVEL: 'warn',
      REGISTER_RATE_LIMIT: '1000000',
      REFRESH_RATE_LIMIT: '1000000',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const redis = createClient({ url: REDIS_URL });
  await redis.connect();
  try {
    for (let i = 0; ; i += 1) {
      try {
        if ((await fetch(`${url}/health/ready`)).ok) break;
      } catch {}
      if (i > 150) throw new Error('the service did not become ready');
      await sleep(200);
    }
    await sleep(500);
    const email = `trips.${randomBytes(4).toString('hex')}@example.com`;
    await call(url, 'POST', '/api/auth/register', { email, password: PASSWORD });
    const session = await fetch(`${url}/api/auth/session/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: PASSWORD }),
    });
    // The session cookie, whichever others (the device cookie) the login sets beside it.
    const cookie = session.headers
      .getSetCookie()
      .map((line) => line.split(';')[0])
      .find((pair) => pair.startsWith('sid='));
    let tokens = (await call(url, 'POST', '/api/auth/token/login', { email, password: PASSWORD })).body;
    const logins = [];

    const operations = {
      'token login': async () => {
        logins.push((await call(url, 'POST', '/api/auth/token/login', { email, password: PASSWORD })).body);
      },
      refresh: async () => {
        tokens = (await call(url, 'POST', '/api/auth/token/refresh', { refreshToken: tokens.refreshToken }))
          .body;
      },
      // Reported less the refresh: what presenting the rotated token again inside the window costs.
      'replay inside the grace window': async () => {
        const before = tokens.refreshToken;
        tokens = (await call(url, 'POST', '/api/auth/token/refresh', { refreshToken: before })).body;
        await call(url, 'POST', '/api/auth/token/refresh', { refreshToken: before });
      },
      'GET /api/me, bearer': () =>
        call(url, 'GET', '/api/me', undefined, { authorization: `Bearer ${tokens.accessToken}` }),
      'GET /api/me, session cookie': () => call(url, 'GET', '/api/me', undefined, { cookie }),
      'token logout': async () => {
        const login = logins.pop();
        await call(
          url,
          'POST',
          '/api/auth/token/logout',
          { refreshToken: login.refreshToken },
          {
            authorization: `Bearer ${login.accessToken}`,
          },
        );
      },
      'GET /health/live': () => call(url, 'GET', '/health/live'),
    };
    const results = {};
    for (const [label, operation] of Object.entries(operations)) {
      await operation();
      await operation();
      const monitor = redis.duplicate();
      await monitor.connect();
      let redisCommands = 0;
      await monitor.monitor((line) => {
        if (line.includes(`"${prefix}`) && !/"publish"/i.test(line)) redisCommands += 1;
      });
      const before = { ...proxy.counts };
      for (let i = 0; i < SAMPLE; i += 1) await operation();
      await sleep(100);
      await monitor.close();
      results[label] = {
        postgresRoundTrips: (proxy.counts.roundTrips - before.roundTrips) / SAMPLE,
        postgresStatements: (proxy.counts.statements - before.statements) / SAMPLE,
        redisCommands: redisCommands / SAMPLE,
      };
    }
    const replay = results['replay inside the grace window'];
    for (const field of Object.keys(replay)) replay[field] -= results.refresh[field];
    console.log(`service: ${SERVICE_DIR}`);
    console.log('| operation | PostgreSQL round trips | PostgreSQL statements | Redis commands |');
    console.log('| --- | ---: | ---: | ---: |');
    for (const [label, row] of Object.entries(results))
      console.log(
        `| ${label} | ${round(row.postgresRoundTrips)} | ${round(row.postgresStatements)} | ${round(row.redisCommands)} |`,
      );
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    proxy.close();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
    for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length) await redis.del(keys);
    }
    await redis.close();
  }
}

async function call(url, method, path, body, headers = {}) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

function round(value) {
  return Number(value.toFixed(2));
}

await main();
