import type { INestApplication, InjectionToken, Type } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Test, TestingModuleBuilder } from '@nestjs/testing';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { randomBytes } from 'node:crypto';
import { createApp } from '../../src/app.factory';
import { hardenServer } from '../../src/common/platform';
import { loadConfig } from '../../src/config/load-config';

export type Env = Record<string, string | undefined>;

/**
 * Storage for one test file: a fresh database on TEST_DATABASE_URL (PostgreSQL mode) or a fresh DATA_DIR
 * for the embedded PGlite, and, with TEST_REDIS_URL, Redis under a key prefix of its own.
 */
export interface TestStorage {
  env: Env;
  mode: 'postgres' | 'embedded';
  redis: boolean;
  drop(): Promise<void>;
}

/** The real servers this run uses, known before any storage exists (suites pick their topologies by it). */
export const TEST_SERVERS = {
  postgres: Boolean(process.env.TEST_DATABASE_URL),
  redis: Boolean(process.env.TEST_REDIS_URL),
};

export async function createTestStorage(): Promise<TestStorage> {
  const dataDir = mkdtempSync(join(tmpdir(), 'auth-test-'));
  const adminUrl = process.env.TEST_DATABASE_URL;
  const redisUrl = process.env.TEST_REDIS_URL;
  const keyPrefix = `t${randomBytes(4).toString('hex')}:`;
  let databaseUrl: string | undefined;
  let databaseName: string | undefined;
  if (adminUrl) {
    databaseName = `auth_test_${randomBytes(6).toString('hex')}`;
    const admin = new Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${databaseName}`);
    await admin.end();
    const url = new URL(adminUrl);
    url.pathname = `/${databaseName}`;
    databaseUrl = url.toString();
  }
  return {
    mode: adminUrl ? 'postgres' : 'embedded',
    redis: Boolean(redisUrl),
    env: {
      NODE_ENV: 'test',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      // JSON lines, as in production, even when the tests run in a terminal.
      LOG_PRETTY: 'false',
      BCRYPT_COST: '4',
      DATA_DIR: dataDir,
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: keyPrefix,
      // Every suite calls from 127.0.0.1; the per-IP limits get their own tests in abuse.e2e-spec.ts.
      REGISTER_RATE_LIMIT: '100000',
      REFRESH_RATE_LIMIT: '100000',
      LOGIN_IP_MAX_FAILURES: '100000',
      LOGIN_IP_MAX_ACCOUNTS: '100000',
      MAIL_IP_RATE_LIMIT: '100000',
      MAIL_ADDRESS_RATE_LIMIT: '100000',
    },
    async drop() {
      rmSync(dataDir, { recursive: true, force: true });
      if (adminUrl && databaseName) {
        const admin = new Client({ connectionString: adminUrl });
        await admin.connect();
        await admin.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
        await admin.end();
      }
    },
  };
}

export interface RunningApp {
  app: INestApplication;
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** A provider a spec replaces: a clock, a mail transport; everything else stays the real AppModule's. */
export type ProviderOverride = { provide: InjectionToken } & (
  | { useValue: unknown }
  | { useClass: Type }
  | { useFactory: (...args: never[]) => unknown; inject?: InjectionToken[] }
);

function applyOverride(builder: TestingModuleBuilder, override: ProviderOverride): TestingModuleBuilder {
  const by = builder.overrideProvider(override.provide);
  if ('useValue' in override) return by.useValue(override.useValue);
  if ('useClass' in override) return by.useClass(override.useClass);
  return by.useFactory({ factory: override.useFactory, inject: override.inject });
}

/**
 * Boots the real AppModule on a random loopback port, built through `@nestjs/testing` with `overrides`
 * replacing providers, and set up by the same `createApp` as `main.ts`.
 */
export async function startApp(env: Env, overrides: ProviderOverride[] = []): Promise<RunningApp> {
  const config = loadConfig({ ...env, HOST: '127.0.0.1', PORT: '0' });
  const app = await createApp(config, async (root, options) => {
    const builder = overrides.reduce(
      applyOverride,
      Test.createTestingModule({ imports: [root] }).setLogger(options.logger),
    );
    const testing = await builder.compile();
    return testing.createNestApplication<NestExpressApplication>(options);
  });
  const server = app.getHttpServer() as Server;
  hardenServer(server);
  await app.listen(0, '127.0.0.1');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { app, server, url: `http://127.0.0.1:${port}`, close: () => app.close() };
}

/** An app on storage of its own for the describe block that declares it, started before its tests. */
export function appFor(env: Env = {}): { current: () => RunningApp } {
  let storage: TestStorage;
  let running: RunningApp;
  beforeAll(async () => {
    storage = await createTestStorage();
    running = await startApp({ ...storage.env, ...env });
  }, 60_000);
  afterAll(async () => {
    await running?.close();
    await storage?.drop();
  }, 60_000);
  return { current: () => running };
}
