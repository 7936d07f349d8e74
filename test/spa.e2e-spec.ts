import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, BrowserContext, Cookie, Page } from 'playwright-core';
import request from 'supertest';
import { CHROMIUM, describeWith } from './support/binaries';
import { launchChromium } from './support/chromium';
import { sessionLogin, sleep, tokenLogin } from './support/clients';
import { registerUser, RegisteredUser } from './support/factories';
import { enrolSecondFactor } from './support/mfa';
import { createTestStorage, RunningApp, startApp, TestStorage } from './support/test-app';

const root = join(__dirname, '..');

/** What the tests call on the app's client, which the page leaves on `window.auth` for the console. */
interface PageClient {
  me(): Promise<unknown>;
  getAccessToken(): Promise<string>;
}

/** examples/spa/serve.mjs as a developer runs it, on a port of its choosing, which its first line names. */
async function serveExample(): Promise<{ origin: string; server: ChildProcess }> {
  const server = spawn(process.execPath, [join(root, 'examples/spa/serve.mjs')], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const origin = await new Promise<string>((resolve, reject) => {
    server.once('exit', (code) => reject(new Error(`serve.mjs exited with ${code}`)));
    server.stdout.on('data', (chunk: Buffer) => {
      const url = /http:\/\/127\.0\.0\.1:\d+/.exec(chunk.toString())?.[0];
      if (url) resolve(url);
    });
  });
  return { origin, server };
}

/** The page loads the client's build: built here when it is missing or older than its source (CI builds it first). */
function buildClient(): void {
  const built = statSync(join(root, 'client/dist/index.js'), { throwIfNoEntry: false })?.mtimeMs ?? 0;
  const source = join(root, 'client/src');
  const changed = readdirSync(source).some((file) => statSync(join(source, file)).mtimeMs > built);
  if (changed) execFileSync('npm', ['run', '--silent', 'client:build'], { cwd: root, stdio: 'inherit' });
}

/** Refresh requests the service has answered, whatever their outcome: its own count, not the browser's. */
async function refreshRequests(api: string): Promise<number> {
  const metrics = (await request(api).get('/metrics').expect(200)).text;
  return metrics
    .split('\n')
    .filter((line) =>
      /^http_request_duration_seconds_count\{[^}]*route="\/api\/auth\/token\/refresh"/.test(line),
    )
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

/**
 * The example app (examples/spa) in Debian's chromium, served by its own serve.mjs from another origin of
 * the same site as the API (127.0.0.1, another port, listed in CORS_ORIGINS): the `rt` cookie is
 * SameSite=Strict and the session cookie Lax, so both travel on the app's calls, as they would from
 * app.example.com to api.example.com. Access tokens live 40 s and the app's `refreshAhead` has the client
 * renew them 20 s early, so tabs holding one token fall due together 20 s after it was issued: time enough
 * to open ten tabs on a loaded machine before the count starts.
 */
describeWith([CHROMIUM], 'the example app in a real browser', () => {
  const ACCESS_TOKEN_TTL = 40;
  const REFRESH_AHEAD = 20;
  let storage: TestStorage;
  let running: RunningApp;
  let browser: Browser;
  let example: { origin: string; server: ChildProcess };
  let api: string;
  let context: BrowserContext;
  const crossSite = () => example.origin.replace('127.0.0.1', 'localhost');

  beforeAll(async () => {
    buildClient();
    example = await serveExample();
    storage = await createTestStorage();
    running = await startApp({
      ...storage.env,
      // The app's origin, and the same app on `localhost`: another site, trusted by CORS but not by the cookies.
      CORS_ORIGINS: `${example.origin},${crossSite()}`,
      ACCESS_TOKEN_TTL: `${ACCESS_TOKEN_TTL}s`,
    });
    api = running.url;
    browser = await launchChromium();
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

  async function openApp(origin = example.origin): Promise<Page> {
    const page = await context.newPage();
    await page.goto(
      `${origin}/?${new URLSearchParams({ api, refreshAhead: String(REFRESH_AHEAD) }).toString()}`,
    );
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
    return JSON.parse((await page.textContent('#auth-info')) ?? '') as {
      method: string;
      sessionId: string;
      mfa: boolean;
    };
  }

  /** `/api/me` through the page's own client, as the app calls it: 200, or the status it was refused with. */
  function meFrom(page: Page): Promise<{ status: number }> {
    return page.evaluate(async () => {
      const { auth } = globalThis as unknown as { auth: PageClient };
      try {
        await auth.me();
        return { status: 200 };
      } catch (error) {
        return { status: (error as { status: number }).status };
      }
    });
  }

  /** The cookies the browser holds, for every path (`rt` is scoped to /api/auth/token). */
  function cookiesOf(page: Page): Promise<Cookie[]> {
    return page.context().cookies();
  }

  it('signs in with a cookie session, whose unsafe calls carry the CSRF token, and logs out everywhere', async () => {
    const user = await registerUser(api);
    const elsewhere = await sessionLogin(api, user);
    const page = await openApp();
    await chooseMethod(page, 'session');
    await signIn(page, user);
    expect(await signedIn(page)).toMatchObject({ method: 'session' });
    expect((await cookiesOf(page)).map(({ name }) => name).sort()).toEqual(['did', 'sid']);

    // Revoking the other sign-in is a DELETE that the cookie authenticates: refused without the token.
    const deletion = page.waitForRequest((sent) => sent.method() === 'DELETE');
    await page.click('#sign-ins button:text-is("Revoke")');
    const sent = await deletion;
    const sid = (await cookiesOf(page)).find(({ name }) => name === 'sid')!;
    const session = await request(api).get('/api/auth/session').set('Cookie', `sid=${sid.value}`).expect(200);
    expect(sent.headers()['x-csrf-token']).toBe((session.body as { csrfToken: string }).csrfToken);
    expect((await sent.response())?.status()).toBe(204);
    await elsewhere.auth(request(api).get('/api/me')).expect(401);
    await page.waitForFunction("document.querySelectorAll('#sign-ins tr').length === 1");

    await page.click('#logout-all-button');
    await page.waitForSelector('body[data-state="signed-out"]');
    await request(api).get('/api/me').set('Cookie', `sid=${sid.value}`).expect(401);
  });

  it('signs in with a token and the rt cookie, and a reload keeps the user signed in', async () => {
    const user = await registerUser(api);
    const page = await openApp();
    await chooseMethod(page, 'token');
    await signIn(page, user);
    const before = await signedIn(page);
    expect(before).toMatchObject({ method: 'token', mfa: false });
    expect((await cookiesOf(page)).find(({ name }) => name === 'rt')).toMatchObject({
      httpOnly: true,
      sameSite: 'Strict',
      path: '/api/auth/token',
    });
    expect((await cookiesOf(page)).map(({ name }) => name)).not.toContain('sid');
    // The access token stays in memory: nothing the page stored looks like one.
    expect(await page.evaluate<string>('JSON.stringify({ ...localStorage, ...sessionStorage })')).not.toMatch(
      /eyJ/,
    );

    await page.reload();
    // The same sign-in (refresh family), restored from the rt cookie.
    expect(await signedIn(page)).toMatchObject({ method: 'token', sessionId: before.sessionId });
  });

  it('asks for the second factor when the account has one', async () => {
    const user = await registerUser(api);
    const { recoveryCodes } = await enrolSecondFactor(api, await tokenLogin(api, user), user.password);
    const page = await openApp();
    await chooseMethod(page, 'token');
    await signIn(page, user);
    await page.waitForSelector('body[data-state="mfa"] #code');
    await page.fill('#code', '000000');
    await page.click('#second-factor button');
    await page.waitForSelector('#message:has-text("did not work")');
    await page.fill('#code', recoveryCodes[0]);
    await page.click('#second-factor button');
    expect(await signedIn(page)).toMatchObject({ method: 'token', mfa: true });
  });

  /** The access token the page's client holds now (it refreshes first if the token is due). */
  function accessTokenOf(page: Page): Promise<string> {
    return page.evaluate(() => (globalThis as unknown as { auth: PageClient }).auth.getAccessToken());
  }

  /** `count` tabs of one signed-in user, every one holding the same access token. */
  async function tabsOnOneToken(count: number): Promise<{ tabs: Page[]; held: string }> {
    const user = await registerUser(api);
    const first = await openApp();
    await chooseMethod(first, 'token');
    await signIn(first, user);
    await signedIn(first);
    const others = await Promise.all(Array.from({ length: count - 1 }, () => openApp()));
    const tabs = [first, ...others];
    await Promise.all(tabs.map(signedIn));
    const held = await Promise.all(tabs.map(accessTokenOf));
    expect(new Set(held).size).toBe(1);
    return { tabs, held: held[0] };
  }

  /** Until a second after the token falls due in the client (REFRESH_AHEAD before its expiry). */
  async function untilDue(token: string): Promise<void> {
    const { exp } = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { exp: number };
    await sleep(exp * 1000 - REFRESH_AHEAD * 1000 - Date.now() + 1000);
  }

  async function tabsRefreshOnce(count: number): Promise<void> {
    // Every tab holds the same access token, so they all fall due at the same moment.
    const { tabs, held } = await tabsOnOneToken(count);
    const before = await refreshRequests(api);

    await untilDue(held);
    const answers = await Promise.all(tabs.map(meFrom));
    expect(answers).toEqual(tabs.map(() => ({ status: 200 })));

    expect((await refreshRequests(api)) - before).toBe(1);
    const renewed = await Promise.all(tabs.map(accessTokenOf));
    expect(new Set(renewed).size).toBe(1);
    expect(renewed[0]).not.toBe(held);
  }

  it('two tabs whose access tokens fall due together make one refresh between them, and both keep working', () =>
    tabsRefreshOnce(2));

  it('ten tabs likewise make one refresh between them', () => tabsRefreshOnce(10));

  it('a tab that gets the lock before the message of the refresh made under it waits for the message', async () => {
    const { tabs, held } = await tabsOnOneToken(2);
    const [first, second] = tabs;
    // The first tab's messages to the other tabs arrive two seconds late, as on a machine under load.
    await first.evaluate(() => {
      const post = BroadcastChannel.prototype.postMessage;
      BroadcastChannel.prototype.postMessage = function (this: unknown, message: unknown) {
        setTimeout(() => post.call(this as never, message), 2000);
      };
    });
    const before = await refreshRequests(api);

    await untilDue(held);
    const renewed = await accessTokenOf(first);
    expect(renewed).not.toBe(held);
    // The refresh lock is free and the message still on its way: the second tab finds the refresh's marker.
    expect(await accessTokenOf(second)).toBe(renewed);
    expect((await refreshRequests(api)) - before).toBe(1);
  });

  it.each(['session', 'token'] as const)(
    '%s: logging out in one tab signs the other tabs out',
    async (method) => {
      const user = await registerUser(api);
      const first = await openApp();
      await chooseMethod(first, method);
      await signIn(first, user);
      await signedIn(first);
      const second = await openApp();
      await signedIn(second);

      await first.click('#logout-button');
      await first.waitForSelector('body[data-state="signed-out"]');
      await second.waitForSelector('body[data-state="signed-out"]');
      expect(await meFrom(second)).toMatchObject({ status: 401 });
    },
  );

  // docs/frontend.md sends a page on another site to tokens with the refresh token in the body: the cookie
  // methods' logins refuse a cross-site request (Sec-Fetch-Site), whatever CORS_ORIGINS allows.
  it.each(['session', 'token'] as const)(
    '%s: the app on another site cannot sign in with cookies',
    async (method) => {
      const user = await registerUser(api);
      const page = await openApp(crossSite());
      await chooseMethod(page, method);
      await signIn(page, user);
      await page.waitForSelector('#message:has-text("CORS_ORIGINS")');
      expect(await page.getAttribute('body', 'data-state')).toBe('signed-out');
      expect(await context.cookies()).toEqual([]);
    },
  );
});
