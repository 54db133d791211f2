/**
 * The approvals queue end to end: the real Worker under wrangler dev, a real MCP client signed in as
 * a non-admin user opening approval records (test_request_approval, as a held call does), a loopback
 * webhook receiver, the admin page in chromium, and the admin CLI. Checks: the webhook is signed
 * (HMAC-SHA256 over "t.body" with the secret), retried after a failure, and carries no command, token
 * or cookie; the page shows the exact command with control characters made visible and approves
 * with its CSRF token (a POST without it changes nothing); the CLI lists (terminal-safe) and rejects;
 * a decided approval cannot be decided again.
 */
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi } from '../harness/admin-api.ts';
import { launchBrowser, screenshot } from '../harness/browser.ts';
import { connectMcpClient } from '../harness/mcp-client.ts';
import { listenOnLoopback, type LoopbackListener } from '../harness/ports.ts';
import { CLI } from '../harness/stdio.ts';
import { waitFor } from '../harness/wait.ts';
import { startWorker, type TestWorker } from '../harness/worker.ts';

const SECRET = 'webhook-secret-7c1f0a9e2b';
/** A command as a person might type it: a password in it, an ANSI colour and a bidi override. */
const COMMAND = 'PGPASSWORD=hunter2 psql -c "DROP TABLE x" \u001b[31m\u202e';
const SHOWN = 'PGPASSWORD=hunter2 psql -c "DROP TABLE x" \\x1b[31m\\u{202e}';

interface Hook {
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
}

let worker: TestWorker;
let receiver: LoopbackListener;
const hooks: Hook[] = [];
let browser: Browser;
let admin: Page;
let bobPassword = '';
const ids: string[] = [];

beforeAll(async () => {
  // The first delivery fails (500), so the retry from the desk's alarm is seen; later ones succeed.
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const status = hooks.length === 0 ? 500 : 204;
      hooks.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8'), status });
      response.writeHead(status).end();
    });
  });
  receiver = await listenOnLoopback(server);
  worker = await startWorker({
    vars: {
      MCP_REMOTE_EXEC_TEST_TOOLS: 'true',
      APPROVAL_WEBHOOK_URL: `http://127.0.0.1:${receiver.port}/hooks/approvals`,
      APPROVAL_WEBHOOK_RETRY_MS: '300,300',
    },
    secrets: { APPROVAL_WEBHOOK_SECRET: SECRET },
  });
  const added = await adminApi(worker).post('users', { username: 'bob', groups: [] });
  expect(added.status).toBe(201);
  bobPassword = String(added.body.password);
  browser = await launchBrowser();
  admin = await (await browser.newContext({ viewport: { width: 1360, height: 900 } })).newPage();
});

afterAll(async () => {
  await browser?.close();
  await worker?.stop();
  await receiver?.close();
});

async function submit(page: Page, selector: string): Promise<number | undefined> {
  const [response] = await Promise.all([page.waitForNavigation(), page.click(selector)]);
  return response?.status();
}

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, 'admin', ...args], {
    env: {
      PATH: process.env.PATH,
      MCP_REMOTE_EXEC_URL: worker.url,
      MCP_REMOTE_EXEC_ADMIN_USER: worker.adminUser,
      MCP_REMOTE_EXEC_ADMIN_PASSWORD: worker.adminPassword,
    },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('approvals queue', () => {
  it('opens two requests as bob, and announces each on the webhook, signed and without secrets', async () => {
    const mcp = await connectMcpClient(worker.mcpUrl, { username: 'bob', password: bobPassword });
    try {
      for (const note of ['prod needs a second person', 'second request']) {
        const result = await mcp.client.callTool({
          name: 'test_request_approval',
          arguments: { host: 'site-a/db1', command: COMMAND, reasons: ['runs psql', 'writes to a database'], note },
        });
        expect(result.isError).toBeFalsy();
        const first = result.content[0];
        ids.push((JSON.parse(first?.type === 'text' ? first.text : '{}') as { id: string }).id);
      }
    } finally {
      await mcp.close();
    }
    expect(ids[0]).toMatch(/^[0-9a-f]{32}$/);
    // Three deliveries: the first failed with 500 and was retried; the second request's went through.
    await waitFor(() => hooks.filter((hook) => hook.status === 204).length >= 2, 30_000, 'two webhook deliveries');
    const firstId = ids[0] ?? '';
    const forFirst = hooks.filter((hook) => hook.body.includes(firstId));
    expect(forFirst.map((hook) => hook.status)).toEqual([500, 204]);
    for (const hook of hooks) {
      const signature = String(hook.headers['x-mre-signature']);
      const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(signature);
      expect(match).not.toBeNull();
      expect(match?.[2]).toBe(createHmac('sha256', SECRET).update(`${match?.[1]}.${hook.body}`).digest('hex'));
      expect(hook.headers.authorization).toBeUndefined();
      expect(hook.headers.cookie).toBeUndefined();
      // Nothing of the command (it carries a password), nothing secret, no approve link.
      expect(hook.body).not.toContain('hunter2');
      expect(hook.body).not.toContain('psql');
      expect(hook.body).not.toContain(SECRET);
      expect(hook.body).not.toContain(worker.adminPassword);
      expect(hook.body).not.toContain(bobPassword);
      expect(hook.body).not.toMatch(/approve/i);
    }
    const payload = JSON.parse(forFirst[1]?.body ?? '{}') as Record<string, unknown>;
    expect(payload).toMatchObject({
      type: 'approval.requested',
      id: firstId,
      requester: 'bob',
      client: 'mcp-remote-exec e2e client',
      host: 'site-a/db1',
      tool: 'ssh_exec_command',
      class: 'privileged',
      rule_note: 'prod needs a second person',
      url: `${worker.url}/admin/approvals#approval-${firstId}`,
    });
    expect(Object.keys(payload).sort()).toEqual(
      ['class', 'client', 'created_at', 'expires_at', 'host', 'id', 'requester', 'rule_note', 'tool', 'type', 'url'].sort(),
    );
  });

  it('shows the queue to the admin with the exact command made visible, and approves with the CSRF token', async () => {
    await admin.goto(`${worker.url}/admin`);
    await admin.fill('#username', worker.adminUser);
    await admin.fill('#password', worker.adminPassword);
    expect(await submit(admin, 'main button[type=submit]')).toBe(200);
    expect(await submit(admin, 'header nav a:has-text("Approvals")')).toBe(200);
    const first = admin.locator(`[data-approval="${ids[0]}"]`);
    expect(await first.locator('pre.command').textContent()).toBe(SHOWN);
    const card = (await first.textContent()) ?? '';
    for (const part of [
      'bob',
      'site-a/db1',
      'privileged',
      'mcp-remote-exec e2e client',
      'runs psql',
      'rule 0: prod needs a second person',
      'a deployment admin',
    ])
      expect(card).toContain(part);
    expect(await admin.locator('[data-approval]').count()).toBe(2);
    await screenshot(admin, 'approvals-01-queue');

    // A form post without this browser's CSRF token changes nothing.
    const forged = await admin.request.post(`${worker.url}/admin/approvals/decide`, { form: { id: ids[0] ?? '', verdict: 'approve' } });
    expect(forged.status()).toBe(403);
    expect(((await adminApi(worker).get('approvals')).body.approvals as unknown[]).length).toBe(2);

    expect(await submit(admin, `[data-approval="${ids[0]}"] button:has-text("Approve")`)).toBe(200);
    expect(((await admin.locator('.notice').textContent()) ?? '').trim()).toBe('Approved.');
    expect(await admin.locator('[data-approval]').count()).toBe(1);
    await screenshot(admin, 'approvals-02-approved');
    const listed = (await adminApi(worker).get('approvals')).body.approvals as Array<{ id: string }>;
    expect(listed.map((item) => item.id)).toEqual([ids[1]]);
  });

  it('lists and rejects from the CLI, terminal-safe, and refuses to decide twice', () => {
    const list = cli(['approvals', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(`${ids[1]}  bob via mcp-remote-exec e2e client on site-a/db1`);
    expect(list.stdout).toContain(`command: ${SHOWN}`);
    expect(list.stdout).not.toContain('\u001b');
    const rejected = cli(['approvals', 'reject', ids[1] ?? '']);
    expect(rejected.code).toBe(0);
    expect(rejected.stdout).toContain(`Rejected ${ids[1]}`);
    const again = cli(['approvals', 'approve', ids[0] ?? '']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/409 conflict: Approval [0-9a-f]{32} is approved \(decided by admin/);
    const unknown = cli(['approvals', 'approve', 'f'.repeat(32)]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('404 not_found');
    expect(cli(['approvals']).stdout.trim()).toBe('Nothing is waiting for approval.');
  });
});
