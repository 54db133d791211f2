/**
 * The admin page in a real browser (Debian's chromium through playwright-core) against the real
 * Worker under wrangler dev: an admin signs in, adds a user and reads the one-time password off
 * the page, that user (in a second browser) meets the 403 page, the admin regroups and disables
 * them, is stopped by a bad policy, saves, exports and imports a good one, and queries the audit
 * log. Each state is screenshotted to test-artifacts/screenshots/admin-*.png.
 */
import { readFileSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi } from '../harness/admin-api.ts';
import { launchBrowser, screenshot } from '../harness/browser.ts';
import { connectMcpClient } from '../harness/mcp-client.ts';
import { startWorker, type TestWorker } from '../harness/worker.ts';

let worker: TestWorker;
let browser: Browser;
let adminContext: BrowserContext;
let admin: Page;
let userContext: BrowserContext;
let user: Page;
let userPassword = '';

const GOOD_POLICY = {
  version: 1,
  grants: [
    { effect: 'allow', subjects: ['group:ops'], role: 'operator', hosts: ['*'], note: 'ops run things everywhere' },
    { effect: 'deny', subjects: ['group:contractors'], role: 'operator', hosts: ['env=prod'] },
  ],
};

/** Click a button or link that submits or navigates, and wait for the new page; its HTTP status. */
async function submit(page: Page, selector: string): Promise<number | undefined> {
  const [response] = await Promise.all([page.waitForNavigation(), page.click(selector)]);
  return response?.status();
}

async function text(page: Page, selector: string): Promise<string> {
  return ((await page.locator(selector).first().textContent()) ?? '').trim();
}

async function signIn(page: Page, username: string, password: string): Promise<number | undefined> {
  await page.goto(`${worker.url}/admin`);
  await page.fill('#username', username);
  await page.fill('#password', password);
  return submit(page, 'main button[type=submit]');
}

beforeAll(async () => {
  worker = await startWorker();
  browser = await launchBrowser();
  adminContext = await browser.newContext({ viewport: { width: 1360, height: 900 }, acceptDownloads: true });
  admin = await adminContext.newPage();
  userContext = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  user = await userContext.newPage();
});

afterAll(async () => {
  await browser?.close();
  await worker?.stop();
});

describe('admin page in chromium', () => {
  it('serves a sign-in page that cannot be framed', async () => {
    const response = await admin.goto(`${worker.url}/admin`);
    expect(response?.status()).toBe(200);
    const headers = response?.headers() ?? {};
    expect(headers['x-frame-options']).toBe('DENY');
    expect(headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(headers['cache-control']).toBe('no-store');
    expect(await text(admin, 'h1')).toBe('Sign in to the admin page');
    await screenshot(admin, 'admin-01-sign-in');

    expect(await signIn(admin, worker.adminUser, 'not the password')).toBe(401);
    expect(await text(admin, '.error')).toBe('Wrong user name or password.');
    await screenshot(admin, 'admin-02-sign-in-wrong-password');
  });

  it('signs the deployment admin in and lists the users, the admin marked', async () => {
    expect(await signIn(admin, worker.adminUser, worker.adminPassword)).toBe(200);
    expect(await text(admin, 'h1')).toBe('Users');
    expect(await text(admin, `tr[data-user="${worker.adminUser}"]`)).toContain('deployment admin');
    expect(await text(admin, 'header .who')).toContain(worker.adminUser);
    await screenshot(admin, 'admin-03-users');
  });

  it('adds a user and shows the one-time password once', async () => {
    await admin.fill('#new-username', 'dana');
    await admin.fill('#new-groups', 'ops');
    await submit(admin, 'button[value=add]');
    const shown = admin.locator('#one-time-password');
    userPassword = ((await shown.textContent()) ?? '').trim();
    expect(userPassword).toMatch(/^[A-Za-z0-9]{24}$/);
    expect(admin.url()).not.toContain(userPassword);
    expect(await admin.inputValue('tr[data-user="dana"] input[name=groups]')).toBe('ops');
    await screenshot(admin, 'admin-04-user-added');

    await admin.goto(`${worker.url}/admin`);
    expect(await admin.locator('#one-time-password').count()).toBe(0);
    expect(await admin.content()).not.toContain(userPassword);
  });

  it('shows the new user, who is not an admin, a 403 page in their own browser', async () => {
    expect(await signIn(user, 'dana', userPassword)).toBe(403);
    expect(await text(user, 'h1')).toBe('Admins only');
    expect(await text(user, 'main')).toContain('signed in as dana');
    expect(await user.locator('header nav a').count()).toBe(0);
    expect(await text(user, 'header button')).toBe('Sign out');
    await screenshot(user, 'admin-05-not-an-admin');
    const policy = await user.goto(`${worker.url}/admin/policy`);
    expect(policy?.status()).toBe(403);
    expect(await user.content()).not.toContain('"grants"');
  });

  it('edits the user’s groups and disables them, which ends their session', async () => {
    await admin.fill('tr[data-user="dana"] input[name=groups]', 'ops, db');
    await submit(admin, 'tr[data-user="dana"] button[value=groups]');
    expect(await text(admin, '.notice')).toBe('Saved the groups of dana.');
    expect(await admin.inputValue('tr[data-user="dana"] input[name=groups]')).toBe('ops, db');
    await screenshot(admin, 'admin-06-groups-saved');

    await submit(admin, 'tr[data-user="dana"] button[value=disable]');
    expect(await text(admin, '.notice')).toContain('Disabled dana');
    expect(await text(admin, 'tr[data-user="dana"] .badge')).toBe('disabled');
    expect(await admin.locator('tr[data-user="dana"] button[value=enable]').isVisible()).toBe(true);
    await screenshot(admin, 'admin-07-user-disabled');

    const reloaded = await user.goto(`${worker.url}/admin`);
    expect(reloaded?.status()).toBe(200);
    expect(await text(user, 'h1')).toBe('Sign in to the admin page');
  });

  it('refuses an invalid policy, keeping the stored one and the submitted text', async () => {
    const api = adminApi(worker);
    const before = (await api.get('policy')).body;
    await admin.goto(`${worker.url}/admin/policy`);
    expect(await text(admin, 'h1')).toBe('Policy');
    const invalid = JSON.stringify({ version: 1, grants: [{ subjects: ['group:ops'], role: 'root', hosts: ['*'] }] }, null, 2);
    await admin.fill('#policy', invalid);
    expect(await submit(admin, 'button:has-text("Save policy")')).toBe(400);
    expect(await text(admin, '.error')).toContain('The policy was not changed: grants.0.role: role must be one of viewer, operator, admin');
    expect(await admin.inputValue('#policy')).toBe(invalid);
    await screenshot(admin, 'admin-08-policy-invalid');
    expect((await api.get('policy')).body).toEqual(before);
  });

  it('saves a valid policy, exports it as policy.json and imports it back', async () => {
    await admin.fill('#policy', JSON.stringify(GOOD_POLICY, null, 2));
    expect(await submit(admin, 'button:has-text("Save policy")')).toBe(200);
    expect(await text(admin, '.notice')).toContain('Saved the policy.');
    await screenshot(admin, 'admin-09-policy-saved');
    expect((await adminApi(worker).get('policy')).body).toEqual(GOOD_POLICY);

    const [download] = await Promise.all([admin.waitForEvent('download'), admin.click('a:has-text("Export policy.json")')]);
    expect(download.suggestedFilename()).toBe('policy.json');
    expect(JSON.parse(readFileSync(await download.path(), 'utf8'))).toEqual(GOOD_POLICY);

    const narrower = { version: 1, grants: [GOOD_POLICY.grants[0]] };
    await admin.setInputFiles('#policy-file', { name: 'policy.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(narrower)) });
    await submit(admin, 'button:has-text("Import")');
    expect(await text(admin, '.notice')).toContain('Imported the policy file.');
    expect((await adminApi(worker).get('policy')).body).toEqual(narrower);
    await screenshot(admin, 'admin-10-policy-imported');
  });

  it('finds an audited tool call with the filter form and exports the same rows', async () => {
    // One real, audited call: the admin's MCP client asks for a command while no relay is connected.
    const mcp = await connectMcpClient(worker.mcpUrl, { username: worker.adminUser, password: worker.adminPassword });
    try {
      const result = await mcp.client.callTool({ name: 'ssh_exec_command', arguments: { command: 'uptime' } });
      expect(result.isError).toBe(true);
    } finally {
      await mcp.close();
    }

    await submit(admin, 'header nav a:has-text("Audit log")');
    expect(await text(admin, 'h1')).toBe('Audit log');
    await admin.fill('#f-user', worker.adminUser);
    await admin.fill('#f-tool', 'ssh_exec_command');
    await admin.selectOption('#f-outcome', 'error');
    await admin.fill('#f-since', new Date(Date.now() - 3600_000).toISOString().slice(0, 10));
    expect(await submit(admin, 'button:has-text("Search")')).toBe(200);
    const rows = admin.locator('#audit tbody tr');
    expect(await rows.count()).toBe(1);
    const row = (await rows.first().textContent()) ?? '';
    expect(row).toContain('uptime');
    expect(row).toContain('mcp-remote-exec e2e client');
    expect(await text(admin, '#audit tbody tr .badge')).toBe('error');
    await screenshot(admin, 'admin-11-audit');

    const [download] = await Promise.all([admin.waitForEvent('download'), admin.click('a:has-text("Export JSONL")')]);
    expect(download.suggestedFilename()).toBe('audit.jsonl');
    const lines = readFileSync(await download.path(), 'utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ user: worker.adminUser, tool: 'ssh_exec_command', target: 'uptime', outcome: 'error' });

    await admin.fill('#f-until', 'not a time');
    expect(await submit(admin, 'button:has-text("Search")')).toBe(400);
    expect(await text(admin, '.error')).toContain('The query was not run: until');
    await screenshot(admin, 'admin-12-audit-bad-filter');
  });

  it('freezes a user from the freeze section and unfreezes them; a forged form changes nothing', async () => {
    await admin.goto(`${worker.url}/admin/freeze`);
    expect(await text(admin, 'h1')).toBe('Freeze');
    expect(await text(admin, '#frozen tbody')).toBe('Nothing is frozen.');
    await admin.selectOption('#freeze-scope', 'user');
    await admin.fill('#freeze-name', 'dana');
    expect(await submit(admin, 'form[action="/admin/freeze"] button[type=submit]')).toBe(200);
    expect(await text(admin, '.notice')).toContain('Frozen.');
    expect(await text(admin, '#frozen tbody')).toContain('user dana');
    expect((await adminApi(worker).get('freeze')).body.freeze).toMatchObject({ users: [expect.objectContaining({ name: 'dana', by: worker.adminUser })] });
    await screenshot(admin, 'admin-11-frozen');
    // The same form without this browser's CSRF token: refused, nothing changed.
    const forged = await adminContext.request.post(`${worker.url}/admin/freeze/unfreeze`, { form: { scope: 'user', name: 'dana', csrf: 'forged' } });
    expect(forged.status()).toBe(403);
    expect((await adminApi(worker).get('freeze')).body.freeze).toMatchObject({ users: [expect.objectContaining({ name: 'dana' })] });
    expect(await submit(admin, 'form[action="/admin/freeze/unfreeze"] button')).toBe(200);
    expect(await text(admin, '.notice')).toBe('Unfrozen.');
    expect(await text(admin, '#frozen tbody')).toBe('Nothing is frozen.');
    await admin.selectOption('#freeze-scope', 'user');
    await admin.fill('#freeze-name', 'no such name!');
    expect(await submit(admin, 'form[action="/admin/freeze"] button[type=submit]')).toBe(400);
    expect(await text(admin, '.error')).toContain('Nothing was frozen');
  });

  it('signs the admin out', async () => {
    await submit(admin, 'header button:has-text("Sign out")');
    expect(await text(admin, 'h1')).toBe('Sign in to the admin page');
    const again = await admin.goto(`${worker.url}/admin/policy`);
    expect(again?.status()).toBe(200);
    expect(await text(admin, 'h1')).toBe('Sign in to the admin page');
  });
});
