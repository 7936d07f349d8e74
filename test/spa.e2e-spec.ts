import { ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';
import request from 'supertest';
import { CHROMIUM, describeWith } from './support/binaries';
import { sessionLogin, tokenLogin } from './support/clients';
import { registerUser, RegisteredUser } from './support/factories';
import { enrolSecondFactor } from './support/mfa';
import { createTestStorage, RunningApp, startApp, TestStorage } from './support/test-app';

const root = join(__dirname, '..');

/** examples/spa/serve.mjs as a developer runs it, on a port of its choosing, which its first line names. */
async function serveExample(): Promise<{ origin: string; server: ChildProcess }> {
  const server = spawn(process.execPath, [join(root, 'examples/spa/serve.mjs')], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const origin = await new Promise<string>((resolve, reject) => {
    server.once('exit', (code) => reject(new Error(`serve.mjs exited with ${code}`)));
    server.stdout!.on('data', (chunk: Buffer) => {
      const url = /http:\/\/127\.0\.0\.1:\d+/.exec(chunk.toString())?.[0];
      if (url) resolve(url);
    });
  });
  return { origin, server };
}

/** Refresh requests the service has answered, whatever their outcome: its own count, not the browser's. */
async function refreshRequests(api: string): Promise<number> {
  const metrics = (await request(api).get('/metrics').expect(200)).text;
  return metrics
    .split('\n')
    .filter((line) => /^http_request_duration_seconds_count\{[^}]*route="\/api\/auth\/token\/refresh"/.test(line))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

/**
 * The example app (examples/spa) in Debian's chromium, served by its own serve.mjs from another origin of
 * the same site as the API (127.0.0.1, another port, listed in CORS_ORIGINS): the `rt` cookie is
 * SameSite=Strict and the session cookie Lax, so both travel on the app's calls, as they would from
 * app.example.com to api.example.com. Access tokens live 20 s; the app asks the client to refresh them
 * `refreshAhead` seconds early, so tabs fall due together within a few seconds of signing in.
 */
describeWith([CHROMIUM], 'the example app in a real browser', () => {
  const ACCESS_TOKEN_TTL = 20;
  let storage: TestStorage;
  let running: RunningApp;
  let browser: Browser;
  let example: { origin: string; server: ChildProcess };
  let api: string;
  let context: BrowserContext;

  beforeAll(async () => {
    if (!existsSync(join(root, 'client/dist/index.js'))) {
      throw new Error('client/dist/index.js is missing: npm run build builds the client the app loads');
    }
    example = await serveExample();
    storage = await createTestStorage();
    running = await startApp({
      ...storage.env,
      CORS_ORIGINS: example.origin,
      ACCESS_TOKEN_TTL: `${ACCESS_TOKEN_TTL}s`,
    });
    api = running.url;
    browser = await chromium.launch({
      executablePath: CHROMIUM.command,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await running?.close();
    await storage?.drop();
    example?.server.kill();
  });

  // One browser profile per test: its tabs share cookies, storage, locks and channels, as a user's do.
  beforeEach(async () => {
    context = await browser.newContext();
  });
  afterEach(async () => {
    await context.close();
  });

  async function openApp(query: Record<string, string> = {}): Promise<Page> {
    const page = await context.newPage();
    await page.goto(`${example.origin}/?${new URLSearchParams({ api, ...query }).toString()}`);
    await page.waitForSelector('body:not([data-state="loading"])');
    return page;
  }

  async function chooseMethod(page: Page, method: 'session' | 'token'): Promise<void> {
    if (await page.isChecked(`[name=method][value=${method}]`)) return;
    await Promise.all([page.waitForNavigation(), page.check(`[name=method][value=${method}]`)]);
    await page.waitForSelector('body[data-state="signed-out"]');
  }

  async function signIn(page: Page, user: RegisteredUser): Promise<void> {
    await page.fill('#email', user.email);
    await page.fill('#password', user.password);
    await page.click('#sign-in-button');
  }

  async function signedIn(page: Page): Promise<{ method: string; sessionId: string; mfa: boolean }> {
    await page.waitForSelector('body[data-state="signed-in"] #sign-ins tr');
    return JSON.parse(await page.textContent('#auth-info')) as { method: string; sessionId: string; mfa: boolean };
  }

  /** A call through the page's own client, as the app makes them. */
  function meFrom(page: Page): Promise<{ status: number; code?: string }> {
    return page.evaluate(async () => {
      const { response, error } = await (window as any).auth.api.GET('/api/me');
      return { status: response.status as number, code: error?.code as string | undefined };
    });
  }
});
