import type { Browser, Locator, Page, Request as BrowserRequest } from 'playwright-core';
import request from 'supertest';
import { CHROMIUM, describeWith } from './support/binaries';
import { launchChromium } from './support/chromium';
import { expectError, tokenLogin } from './support/clients';
import { registerUser } from './support/factories';
import { createTestStorage, RunningApp, startApp, TestStorage } from './support/test-app';

type Method = 'get' | 'post' | 'delete';

/**
 * Swagger UI at /docs, used as a person trying the API uses it: every call goes through the page's own
 * controls (expand the operation, "Try it out", fill the body, "Execute", "Authorize"), in Debian's
 * chromium, against the page's own origin.
 */
describeWith([CHROMIUM], 'Swagger UI in a real browser', () => {
  let storage: TestStorage;
  let running: RunningApp;
  let browser: Browser;
  let api: string;

  beforeAll(async () => {
    storage = await createTestStorage();
    running = await startApp(storage.env);
    api = running.url;
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await running?.close();
    await storage?.drop();
  });

  /** The Swagger UI page, with every Content-Security-Policy report it raises collected. */
  async function openDocs(page: Page): Promise<string[]> {
    const violations: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
    });
    await page.goto(`${api}/docs`);
    await page.locator('.opblock').first().waitFor();
    return violations;
  }

  function operation(page: Page, method: Method, path: string): Locator {
    return page.locator(`.opblock.opblock-${method}`, {
      has: page.locator(`.opblock-summary-path[data-path="${path}"]`),
    });
  }

  /**
   * Runs one operation from its block and returns the request the page sent and the status Swagger UI
   * shows for the answer.
   */
  async function execute(
    page: Page,
    method: Method,
    path: string,
    body?: object,
  ): Promise<{ sent: BrowserRequest; shown: string; answer: unknown }> {
    const block = operation(page, method, path);
    if (!(await block.locator('.opblock-body').isVisible())) await block.locator('.opblock-summary').click();
    const tryOut = block.locator('button.try-out__btn');
    if ((await tryOut.textContent())?.includes('Try it out')) await tryOut.click();
    if (body) await block.locator('textarea.body-param__text').fill(JSON.stringify(body));
    const answered = page.waitForResponse(
      (response) =>
        new URL(response.url()).pathname === path && response.request().method() === method.toUpperCase(),
    );
    await block.locator('button.execute').click();
    const response = await answered;
    const text = await response.text();
    const answer: unknown = text === '' ? undefined : JSON.parse(text);
    const status = block.locator('.live-responses-table .response .response-col_status');
    await status.first().waitFor();
    return { sent: response.request(), shown: (await status.first().textContent())?.trim() ?? '', answer };
  }

  it('a session login made in the page lets unsafe calls through, their CSRF token sent for them, across a reload and in a new tab', async () => {
    const user = await registerUser(api);
    const context = await browser.newContext();
    const page = await context.newPage();
    const violations = await openDocs(page);

    const login = await execute(page, 'post', '/api/auth/session/login', {
      email: user.email,
      password: user.password,
    });
    expect(login.shown).toBe('200');
    const { csrfToken } = login.answer as { csrfToken: string };
    const sid = (await context.cookies(api)).find(({ name }) => name === 'sid')!;

    const resent = await execute(page, 'post', '/api/me/email/verification');
    expect(resent.shown).toBe('202');
    expect(resent.sent.headers()['x-csrf-token']).toBe(csrfToken);

    // A reload keeps the token (sessionStorage): the call needs no lookup.
    await page.reload();
    await page.locator('.opblock').first().waitFor();
    const lookups: string[] = [];
    page.on('request', (sent) => {
      if (new URL(sent.url()).pathname === '/api/auth/session') lookups.push(sent.method());
    });
    const again = await execute(page, 'post', '/api/me/email/verification');
    expect(again.shown).toBe('202');
    expect(again.sent.headers()['x-csrf-token']).toBe(csrfToken);
    expect(lookups).toEqual([]);

    // A new tab has the cookie but no token yet: it asks GET /api/auth/session for it, then logs out.
    const tab = await context.newPage();
    await openDocs(tab);
    const logout = await execute(tab, 'post', '/api/auth/session/logout');
    expect(logout.shown).toBe('204');
    expect(logout.sent.headers()['x-csrf-token']).toBe(csrfToken);
    expectError(
      await request(api).get('/api/auth/session').set('Cookie', `${sid.name}=${sid.value}`),
      401,
      'SESSION_INVALID',
    );
    expect(violations).toEqual([]);
    await context.close();
  });

  it('a bearer token pasted in Authorize survives a reload and authenticates the call', async () => {
    const user = await registerUser(api);
    const { accessToken } = await tokenLogin(api, user);
    const context = await browser.newContext();
    const page = await context.newPage();
    await openDocs(page);

    await page.locator('.auth-wrapper button.authorize').click();
    const bearer = page.locator('.modal-ux .auth-container', { hasText: 'http, Bearer' });
    await bearer.locator('input').fill(accessToken);
    await bearer.locator('button.authorize').click();
    await bearer.locator('button.btn-done').click();

    await page.reload();
    await page.locator('.opblock').first().waitFor();
    const me = await execute(page, 'get', '/api/me');
    expect(me.shown).toBe('200');
    expect(me.sent.headers()['authorization']).toBe(`Bearer ${accessToken}`);
    expect(me.answer).toMatchObject({ user: { email: user.email }, auth: { method: 'token' } });
    expect(await context.cookies(api)).toEqual([]);
    await context.close();
  });
});
