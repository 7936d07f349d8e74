import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import request from 'supertest';
import { CHROMIUM, describeWith } from './support/binaries';
import { launchChromium } from './support/chromium';
import { registerUser, RegisteredUser } from './support/factories';
import { asSession } from './support/clients';
import { createTestStorage, RunningApp, startApp, TestStorage } from './support/test-app';

/** A page that only serves as an origin to run scripts from. */
async function servePage(): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => {
    res.setHeader('Content-Type', 'text/html');
    res.end('<!doctype html><title>page</title><body></body>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/**
 * What a browser does with the cookies is the point here, so a real one runs the requests: Debian's
 * chromium driven by playwright-core. The API is on 127.0.0.1; the app's page on another port of
 * 127.0.0.1 (same site, another origin, listed in CORS_ORIGINS); the attacker's page on `localhost`, which
 * is another site.
 */
describeWith([CHROMIUM], 'in a real browser', () => {
  let storage: TestStorage;
  let running: RunningApp;
  let browser: Browser;
  let appPage: { server: Server; port: number };
  let evilPage: { server: Server; port: number };
  let api: string;

  beforeAll(async () => {
    appPage = await servePage();
    evilPage = await servePage();
    storage = await createTestStorage();
    running = await startApp({
      ...storage.env,
      CORS_ORIGINS: `http://127.0.0.1:${appPage.port}`,
    });
    api = running.url;
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await running?.close();
    await storage?.drop();
    appPage?.server.close();
    evilPage?.server.close();
  });

  async function open(origin: string): Promise<Page> {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(origin);
    return page;
  }

  /** fetch() from inside the page; a network failure (a CORS refusal) comes back as status 0. */
  function pageFetch(
    page: Page,
    url: string,
    init: { method?: string; headers?: Record<string, string>; body?: string; mode?: 'cors' | 'no-cors' },
  ): Promise<{ status: number; body: string }> {
    return page.evaluate(
      async ([target, options]) => {
        try {
          const response = await fetch(target, { credentials: 'include', ...options });
          return { status: response.status, body: await response.text() };
        } catch {
          return { status: 0, body: '' };
        }
      },
      [url, init] as const,
    );
  }

  async function loginFromApp(page: Page, user: RegisteredUser): Promise<string> {
    const login = await pageFetch(page, `${api}/api/auth/session/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: user.email, password: user.password }),
    });
    expect(login.status).toBe(200);
    return (JSON.parse(login.body) as { csrfToken: string }).csrfToken;
  }

  it("the app's origin signs in with the cookie, which scripts cannot read, and writes with the CSRF token", async () => {
    const user = await registerUser(api);
    const page = await open(`http://127.0.0.1:${appPage.port}/`);
    const csrfToken = await loginFromApp(page, user);
    expect(await page.evaluate<string>('document.cookie')).toBe('');
    const cookies = await page.context().cookies(api);
    // The session cookie, and the device cookie (did) that spares the owner an account lock.
    expect(
      cookies
        .map((cookie) => [cookie.name, cookie.httpOnly, cookie.sameSite])
        .sort(([a], [b]) => (a < b ? -1 : 1)),
    ).toEqual([
      ['did', true, 'Strict'],
      ['sid', true, 'Lax'],
    ]);
    const me = await pageFetch(page, `${api}/api/me`, {});
    expect(me.status).toBe(200);
    expect(JSON.parse(me.body)).toMatchObject({ user: { email: user.email }, auth: { method: 'session' } });
    const withoutToken = await pageFetch(page, `${api}/api/me/logout-all`, { method: 'POST' });
    expect(withoutToken.status).toBe(403);
    const withToken = await pageFetch(page, `${api}/api/me/logout-all`, {
      method: 'POST',
      headers: { 'X-CSRF-Token': csrfToken },
    });
    expect(withToken.status).toBe(204);
    expect((await pageFetch(page, `${api}/api/me`, {})).status).toBe(401);
  });

  it("another site's page cannot read or write with the user's cookie", async () => {
    const user = await registerUser(api);
    const appTab = await open(`http://127.0.0.1:${appPage.port}/`);
    await loginFromApp(appTab, user);
    const cookie = (await appTab.context().cookies(api)).find(({ name }) => name === 'sid')!;
    // The attacker's page runs in the same browser profile as the signed-in tab.
    const evil = await appTab.context().newPage();
    await evil.goto(`http://localhost:${evilPage.port}/`);

    // Reading: CORS gives the other site nothing.
    expect((await pageFetch(evil, `${api}/api/me`, {})).status).toBe(0);
    // Writing blind: a no-cors POST goes out, but SameSite=Lax keeps the cookie off it.
    const blind = await pageFetch(evil, `${api}/api/me/logout-all`, { method: 'POST', mode: 'no-cors' });
    expect(blind.status).toBe(0);
    // A top-level form POST, the classic CSRF, does not carry the Lax cookie either.
    await evil.setContent(
      `<form method="POST" action="${api}/api/me/logout-all" enctype="text/plain"></form>`,
    );
    await Promise.all([evil.waitForNavigation(), evil.evaluate('document.forms[0].submit()')]);
    expect(await evil.content()).toContain('AUTHENTICATION_REQUIRED');
    // The user's session went through all of it untouched.
    const session = asSession(`${cookie.name}=${cookie.value}`, '');
    await session.auth(request(api).get('/api/me')).expect(200);
    expect((await pageFetch(appTab, `${api}/api/me`, {})).status).toBe(200);
  });

  it("another site cannot log the browser in to the attacker's account (login CSRF)", async () => {
    const attacker = await registerUser(api);
    const evil = await open(`http://localhost:${evilPage.port}/`);
    // A JSON login needs a CORS preflight the other site does not pass; a form can only send text.
    const json = await pageFetch(evil, `${api}/api/auth/session/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: attacker.email, password: attacker.password }),
    });
    expect(json.status).toBe(0);
    // The text/plain trick: the field name carries the JSON, the browser appends "=".
    const fields = JSON.stringify({ email: attacker.email, password: attacker.password, x: '' }).slice(0, -2);
    await evil.setContent(
      `<form method="POST" action="${api}/api/auth/session/login" enctype="text/plain"><input name='${fields}' value='"}'></form>`,
    );
    await Promise.all([evil.waitForNavigation(), evil.evaluate('document.forms[0].submit()')]);
    expect(await evil.content()).toContain('UNSUPPORTED_MEDIA_TYPE');
    expect(await evil.context().cookies(api)).toEqual([]);
  });
});
