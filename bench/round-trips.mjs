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
import { randomBytes } from 'node:crypto';
import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'redis';
import {
  ADMIN_URL,
  createStorage,
  PASSWORD,
  REDIS_URL,
  request,
  SERVICE_DIR,
  sessionCookieOf,
  startService,
} from './lib.mjs';

const SAMPLE = Number(process.env.BENCH_SAMPLE ?? 50);

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
  const storage = await createStorage('trips');
  const adminUrl = new URL(ADMIN_URL);
  const proxy = await countingProxy({ host: adminUrl.hostname, port: Number(adminUrl.port || 5432) });
  const databaseUrl = new URL(storage.databaseUrl);
  databaseUrl.host = `127.0.0.1:${proxy.port}`;
  const prefix = storage.prefix;
  const redis = createClient({ url: REDIS_URL });
  await redis.connect();
  let service;
  try {
    service = await startService({ databaseUrl: databaseUrl.toString(), prefix, env: { BCRYPT_COST: '4' } });
    const url = service.url;
    const email = `trips.${randomBytes(4).toString('hex')}@example.com`;
    await request(url, 'POST', '/api/auth/register', { email, password: PASSWORD });
    const cookie = sessionCookieOf(
      (await request(url, 'POST', '/api/auth/session/login', { email, password: PASSWORD })).response,
    );
    let tokens = (await request(url, 'POST', '/api/auth/token/login', { email, password: PASSWORD })).body;
    const logins = [];

    const operations = {
      'token login': async () => {
        logins.push(
          (await request(url, 'POST', '/api/auth/token/login', { email, password: PASSWORD })).body,
        );
      },
      refresh: async () => {
        tokens = (
          await request(url, 'POST', '/api/auth/token/refresh', { refreshToken: tokens.refreshToken })
        ).body;
      },
      // Reported less the refresh: what presenting the rotated token again inside the window costs.
      'replay inside the grace window': async () => {
        const before = tokens.refreshToken;
        tokens = (await request(url, 'POST', '/api/auth/token/refresh', { refreshToken: before })).body;
        await request(url, 'POST', '/api/auth/token/refresh', { refreshToken: before });
      },
      'GET /api/me, bearer': () =>
        request(url, 'GET', '/api/me', undefined, { authorization: `Bearer ${tokens.accessToken}` }),
      'GET /api/me, session cookie': () => request(url, 'GET', '/api/me', undefined, { cookie }),
      'token logout': async () => {
        const login = logins.pop();
        await request(
          url,
          'POST',
          '/api/auth/token/logout',
          { refreshToken: login.refreshToken },
          {
            authorization: `Bearer ${login.accessToken}`,
          },
        );
      },
      'GET /health/live': () => request(url, 'GET', '/health/live'),
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
    await service?.stop();
    proxy.close();
    await storage.drop(redis);
    await redis.close();
  }
}

function round(value) {
  return Number(value.toFixed(2));
}

await main();
