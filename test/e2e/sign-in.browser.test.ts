/**
 * The sign-in and consent pages in a real browser (Debian's chromium via playwright-core), against
 * the Worker under wrangler dev and the real oidc-provider: the password form, the round trip
 * through the provider's login page, consent, and consent remembered on the next authorization.
 * The OAuth library's binding cookies are `__Host-` (Secure) on plain-http 127.0.0.1: chromium
 * keeps them for loopback, which this test depends on. Screenshots go to test-artifacts/screenshots.
 */
import { createServer, type Server } from 'node:http';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizeUrl as oauthAuthorizeUrl, registerClient as registerOAuthClient } from '../harness/oauth-client.ts';
import { launchBrowser, screenshot } from '../harness/browser.ts';
import { startOidcProvider, type TestOidcProvider } from '../harness/oidc-provider.ts';
import { freePort } from '../harness/ports.ts';
import { startWorker, type TestWorker } from '../harness/worker.ts';

const PASSWORD = 'browser-idp-password-3b9';

let worker: TestWorker;
let idp: TestOidcProvider;
let browser: Browser;
let callbackServer: Server;
/** The MCP client's callback: a loopback server that records where the browser was sent. */
let REDIRECT_URI = '';
const reachedCallbacks: string[] = [];

/** A client registered the way claude.ai registers (dynamic registration), and an authorization URL for it. */
const registerClient = (name: string): Promise<string> => registerOAuthClient(worker, name, REDIRECT_URI);
const authorizeUrl = (clientId: string): string => oauthAuthorizeUrl(worker, clientId, REDIRECT_URI, 'browser-state');

/** The last URL the browser was sent to at the client's callback. */
function catchCallback(): () => string | null {
  const before = reachedCallbacks.length;
  return () => (reachedCallbacks.length > before ? (reachedCallbacks.at(-1) ?? null) : null);
}

beforeAll(async () => {
  callbackServer = createServer((req, res) => {
    // Only the callback itself: chromium also asks this origin for /favicon.ico.
    const reached = new URL(req.url ?? '/', REDIRECT_URI);
    if (reached.pathname === '/callback') reachedCallbacks.push(reached.toString());
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end('client callback reached');
  });
  const callbackPort = await freePort();
  await new Promise<void>((resolve) => callbackServer.listen(callbackPort, '127.0.0.1', resolve));
  REDIRECT_URI = `http://127.0.0.1:${callbackPort}/callback`;
  const port = await freePort();
  idp = await startOidcProvider({
    redirectUris: [`http://127.0.0.1:${port}/auth/callback`],
    accounts: { olivia: { password: PASSWORD, email: 'olivia@corp.test', groups: ['ops'] } },
  });
  worker = await startWorker({
    port,
    secrets: { OIDC_CLIENT_SECRET: idp.clientSecret },
    vars: {
      OIDC_ISSUER: idp.issuer,
      OIDC_CLIENT_ID: idp.clientId,
      OIDC_DISPLAY_NAME: 'Corp SSO',
      OIDC_SCOPES: 'openid email profile groups',
      OIDC_ALLOWED_GROUPS: 'ops',
    },
  });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await worker?.stop();
  await idp?.stop();
  await new Promise<void>((resolve) => (callbackServer ? callbackServer.close(() => resolve()) : resolve()));
});

describe('sign-in pages in chromium', () => {
  it('signs in with a password on the sign-in page and lands on the client with a code', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const reached = catchCallback();
    await page.goto(authorizeUrl(await registerClient('Browser <b>password</b> client')));
    expect(await page.locator('h1').textContent()).toBe('Sign in to mcp-remote-exec');
    // The client's name is shown as text, never as markup.
    expect(await page.locator('.client strong').first().textContent()).toBe('Browser <b>password</b> client');
    expect(await page.getByRole('button', { name: 'Continue with Corp SSO' }).isVisible()).toBe(true);
    await screenshot(page, 'sign-in-page');
    await page.fill('#username', worker.adminUser);
    await page.fill('#password', 'not the password');
    await page.getByRole('button', { name: 'Sign in and allow' }).click();
    await page.waitForLoadState();
    expect(await page.getByRole('alert').textContent()).toContain('Wrong user name or password');
    await screenshot(page, 'sign-in-page-wrong-password');
    await page.fill('#password', worker.adminPassword);
    await page.getByRole('button', { name: 'Sign in and allow' }).click();
    await page.waitForURL(`${REDIRECT_URI}**`);
    expect(new URL(reached() ?? '').searchParams.get('code')).toBeTruthy();
    await context.close();
  });

  it('goes through the identity provider, shows consent once, and remembers it for this user and client', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const reached = catchCallback();
    const clientId = await registerClient('Browser SSO client');
    await page.goto(authorizeUrl(clientId));
    await page.getByRole('button', { name: 'Continue with Corp SSO' }).click();
    await page.waitForURL(`${idp.issuer}/interaction/**`);
    await screenshot(page, 'oidc-provider-login');
    await page.fill('#login', 'olivia');
    await page.fill('#password', PASSWORD);
    await page.getByRole('button', { name: 'Sign in at the IdP' }).click();
    await page.waitForURL(`${worker.url}/auth/callback**`);
    expect(await page.locator('h1').textContent()).toBe('Allow Browser SSO client?');
    expect(await page.locator('main').textContent()).toContain('Signed in as olivia@corp.test');
    expect(await page.locator('main').textContent()).toContain('Access will be sent to 127.0.0.1');
    expect(await page.locator('main').textContent()).toContain('an app on this computer');
    await screenshot(page, 'consent-page');
    // The binding cookies the OAuth library set are __Host- (Secure) and chromium kept them on http loopback.
    const cookies = await context.cookies(worker.url);
    expect(cookies.some((cookie) => cookie.name.startsWith('__Host-oauth-consent') && cookie.secure)).toBe(true);
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${REDIRECT_URI}**`);
    const first = new URL(reached() ?? '');
    expect(first.searchParams.get('code')).toBeTruthy();
    expect(first.searchParams.get('state')).toBe('browser-state');

    // Same user, same client: straight back to the client, no page.
    await page.goto(authorizeUrl(clientId));
    await page.waitForURL(`${REDIRECT_URI}**`);
    expect(reached()).not.toBe(first.toString());
    expect(new URL(reached() ?? '').searchParams.get('code')).toBeTruthy();

    // Another client: signed in already, so only the consent page.
    await page.goto(authorizeUrl(await registerClient('Another browser client')));
    expect(await page.locator('h1').textContent()).toBe('Allow Another browser client?');
    await screenshot(page, 'consent-page-second-client');
    await context.close();
  });
});
