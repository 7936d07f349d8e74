// Measures whether a login reveals that an email exists: the median latency of many logins with an unknown
// email against many with a known email and a wrong password. Not part of `npm test`: timings belong in a
// report, never in an assertion.
//
//   node bench/login-timing.mjs --url http://127.0.0.1:3000 [--path /api/auth/session/login] [--n 300]
//     against a running service; start it with limits that let the run through, e.g.
//     LOGIN_MAX_FAILURES=1000 LOGIN_IP_MAX_FAILURES=1000000 LOGIN_IP_MAX_ACCOUNTS=1000000
//   node bench/login-timing.mjs --url http://127.0.0.1:3000 --path /api/auth/password/forgot [--n 300]
//     the same comparison for password-reset requests (202 either way): start the service with
//     MAIL_IP_RATE_LIMIT=1000000 MAIL_ADDRESS_RATE_LIMIT=1000000 so every request for the known address
//     really leads to a mail; add --gap 50 (ms between requests) so that the worker resolving the known
//     address's request into a mail does not slow the requests that follow it
//   npm run build && node bench/login-timing.mjs --in-process [--n 300] [--cost 12]
//     boots the built service in this process (embedded database) and calls LoginService directly, the code
//     both login routes run, for use before the login routes exist.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    path: { type: 'string', default: '/api/auth/session/login' },
    n: { type: 'string', default: '300' },
    cost: { type: 'string', default: '12' },
    'in-process': { type: 'boolean', default: false },
    gap: { type: 'string', default: '0' },
  },
});
const rounds = Number(args.n);
const gapMs = Number(args.gap);
const password = 'lantern-orbit-cobalt-42';
const email = `timing.${randomBytes(4).toString('hex')}@example.com`;

function median(samples) {
  const sorted = [...samples].sort((x, y) => x - y);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Alternates the two kinds so drift (JIT warm-up, GC, a noisy neighbour) hits both alike. */
async function measure(attempt) {
  const unknown = [];
  const wrong = [];
  for (let i = 0; i < 10; i += 1) await attempt(email, 'warm-up-guess');
  for (let i = 0; i < rounds; i += 1) {
    for (const [target, samples] of i % 2
      ? [
          [email, wrong],
          [null, unknown],
        ]
      : [
          [null, unknown],
          [email, wrong],
        ]) {
      // Work a request leaves for after its answer (the worker's reset mail for a known address) slows the
      // next ones; a gap lets each request meet an idle service, so only its own answer is timed.
      if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
      const start = process.hrtime.bigint();
      await attempt(
        target ?? `nobody.${i}.${randomBytes(3).toString('hex')}@example.com`,
        `guess-${i}-wrong`,
      );
      samples.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
  }
  return { unknown: median(unknown), wrong: median(wrong) };
}

async function overHttp(url) {
  const post = (path, body) =>
    fetch(new URL(path, url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const registered = await post('/api/auth/register', { email, password });
  if (registered.status !== 201) throw new Error(`register answered ${registered.status}`);
  const forgot = args.path.endsWith('/password/forgot');
  return measure(async (target, guess) => {
    const response = await post(args.path, forgot ? { email: target } : { email: target, password: guess });
    await response.arrayBuffer();
    const expected = forgot ? 202 : 401;
    if (response.status !== expected) throw new Error(`${args.path} answered ${response.status}; raise the limits`);
  });
}

async function inProcess() {
  const dist = resolve(import.meta.dirname, '..', 'dist', 'src');
  const { loadConfig } = await import(join(dist, 'config', 'load-config.js'));
  const { createApp } = await import(join(dist, 'app.factory.js'));
  const { LoginService } = await import(join(dist, 'auth', 'login.service.js'));
  const { UsersService } = await import(join(dist, 'users', 'users.service.js'));
  const dataDir = mkdtempSync(join(tmpdir(), 'login-timing-'));
  const app = await createApp(
    loadConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      DATA_DIR: dataDir,
      BCRYPT_COST: args.cost,
      LOGIN_MAX_FAILURES: '1000',
      LOGIN_IP_MAX_FAILURES: '1000000',
      LOGIN_IP_MAX_ACCOUNTS: '1000000',
    }),
  );
  await app.init();
  try {
    await app.get(UsersService).register({ email, password }, { ip: '127.0.0.1', userAgent: 'bench' });
    const login = app.get(LoginService);
    return await measure((target, guess) =>
      login.verifyCredentials(target, guess, undefined, { ip: '127.0.0.1', userAgent: 'bench' }).then(
        () => {
          throw new Error('a wrong password was accepted');
        },
        (error) => {
          if (error?.code !== 'INVALID_CREDENTIALS') throw error;
        },
      ),
    );
  } finally {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (!args.url && !args['in-process']) {
  console.error('usage: node bench/login-timing.mjs --url http://127.0.0.1:3000 | --in-process');
  process.exit(2);
}
const result = args.url ? await overHttp(args.url) : await inProcess();
console.log(`rounds per kind:        ${rounds}`);
console.log(`unknown email median:   ${result.unknown.toFixed(2)} ms`);
console.log(`known email median:     ${result.wrong.toFixed(2)} ms (with a wrong password, for a login)`);
console.log(`difference:             ${(result.unknown - result.wrong).toFixed(2)} ms`);
