import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { startEmbeddedPostgres } from '../../src/database/embedded-postgres';
import type { Env } from './test-app';

const ROOT = resolve(__dirname, '../..');
const MAIN = join(ROOT, 'dist/src/main.js');

function newestSource(directory: string): number {
  let newest = 0;
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    // Mail templates are copied into dist/ by the build, so they count as sources too.
    else if (/\.(ts|txt|html)$/.test(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** `npm run build` when dist/ is missing or older than a source file, so spawned instances run this code. */
export function ensureBuilt(): void {
  const built = existsSync(MAIN) ? statSync(MAIN).mtimeMs : 0;
  const sources = Math.max(newestSource(join(ROOT, 'src')), newestSource(join(ROOT, 'migrations')));
  if (built >= sources) return;
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'pipe' });
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

export interface Instance {
  url: string;
  port: number;
  process: ChildProcess;
  /** What the process wrote to stdout and stderr so far, for failure messages. */
  output(): string;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  exited: Promise<number | string>;
  /** Sends a signal (SIGTERM by default) and waits for the process to end. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Runs the built service (`node dist/src/main.js`) on a free loopback port, without waiting for it. */
export async function startService(env: Env): Promise<Instance> {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, ...env, HOST: '127.0.0.1', PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // A test process that dies must not leave services running behind it.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolveExit) =>
    child.once('exit', (code, signal) => {
      process.removeListener('exit', reap);
      resolveExit(code ?? signal ?? 'unknown');
    }),
  );
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    process: child,
    output: () => output,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/**
 * Runs the built service (`node dist/src/main.js`) as a separate process on a free loopback port with the
 * given environment, and resolves once GET /health/ready answers 200.
 */
export async function spawnInstance(env: Env, options: { readyTimeoutMs?: number } = {}): Promise<Instance> {
  const instance = await startService(env);
  const { url, port, exited } = instance;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  let ended = false;
  void exited.then(() => (ended = true));
  while (Date.now() < deadline && !ended) {
    const ready = await fetch(`${url}/health/ready`).then(
      (response) => response.status === 200,
      () => false,
    );
    if (ready) return instance;
    await new Promise((wait) => setTimeout(wait, 200));
  }
  await instance.stop('SIGKILL');
  throw new Error(`instance on port ${port} did not become ready:\n${instance.output()}`);
}

export interface SharedDatabase {
  env: Env;
  close(): Promise<void>;
}

/**
 * The environment for several processes on one database: PostgreSQL mode already has one; in embedded mode
 * the test process serves the PGlite database under DATA_DIR on its socket and every instance connects to
 * it through DATABASE_URL (Redis absent, so the database stands in for it, as in embedded production).
 */
export async function shareDatabase(env: Env): Promise<SharedDatabase> {
  if (env.DATABASE_URL) return { env, close: () => Promise.resolve() };
  const embedded = await startEmbeddedPostgres(env.DATA_DIR!);
  return { env: { ...env, DATABASE_URL: embedded.url }, close: () => embedded.stop() };
}
