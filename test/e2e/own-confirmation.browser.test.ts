/**
 * A `confirm` command rule through the whole stack (real Worker, relay, sshd, MCP clients signed in
 * through OAuth, chromium): the requester confirms their own command, never another person.
 * - 2025-era client that declared elicitation: asked during the call (host, exact command, class,
 *   rule); yes runs it once (the desk records the requester's own decision and its use); no runs
 *   nothing and is audited.
 * - 2026-07-28 client that declared elicitation: asked by an input_required result, answered on the
 *   client's retry, which decides the same pending record (one request in the audit, not two); yes
 *   runs it once, no runs nothing.
 * - A client without elicitation (either era): the call answers approval_pending with the id and the
 *   URL of /approvals/mine; the requester, a non-admin, confirms it there in a browser
 *   (CSRF-checked; nobody else sees or decides it), then ssh_approval_status runs it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi } from '../harness/admin-api.ts';
import { launchBrowser, screenshot } from '../harness/browser.ts';
import { connectMcpClient, type ConnectedClient, type ConnectOptions, type McpEra } from '../harness/mcp-client.ts';
import { modernRpc, type Rpc } from '../harness/modern-rpc.ts';
import type { TestSshd } from '../harness/sshd.ts';
import { startStack, textOf, type Stack } from '../harness/stack.ts';

let stack: Stack;
let browser: Browser;
const sessions: ConnectedClient[] = [];
const passwords = new Map<string, string>();
const RUN = `${process.pid}${Date.now() % 100_000}`;
/** Every question the answering clients were asked. */
const asked: string[] = [];

const POLICY = {
  version: 1,
  grants: [{ effect: 'allow', subjects: ['group:ops'], role: 'operator', hosts: ['*'] }],
  commandRules: [
    { effect: 'confirm', roles: ['operator'], hosts: ['env=prod'], classes: ['mutating'], note: 'prod changes need your own yes' },
    // Nobody is in group:strict until a test puts someone there: approve outranks confirm.
    { effect: 'approve', subjects: ['group:strict'], roles: ['operator'], hosts: ['env=prod'], classes: ['mutating'], note: 'strict: a second person decides' },
  ],
};

function relayConfig(sshd: TestSshd): unknown {
  return {
    relay_id: 'confirm-relay',
    known_hosts: [sshd.knownHostsPath],
    hosts: [{ name: 'prod', address: '127.0.0.1', port: sshd.port, user: sshd.user, key_path: sshd.privateKeyPath, labels: { env: 'prod' } }],
  };
}

async function signIn(username: string, options: ConnectOptions = {}): Promise<ConnectedClient> {
  const session = await connectMcpClient(stack.worker.mcpUrl, { username, password: passwords.get(username) ?? '' }, options);
  sessions.push(session);
  return session;
}

function answering(answer: 'yes' | 'no'): ConnectOptions['answer'] {
  return (message) => {
    asked.push(message);
    return answer === 'yes' ? { confirm: true } : 'decline';
  };
}

async function call(session: ConnectedClient, name: string, args: Record<string, unknown>): Promise<{ text: string; isError: boolean }> {
  const result = await session.client.callTool({ name, arguments: args }, undefined, { timeout: 60_000 });
  return { text: textOf(result as never), isError: Boolean(result.isError) };
}

async function auditTools(user: string, marker: string): Promise<string[]> {
  const reply = await adminApi(stack.worker).get(`audit?user=${user}&limit=1000`);
  expect(reply.status).toBe(200);
  return (reply.body.entries as Array<Record<string, unknown>>)
    .filter((row) => String(row.target ?? '').includes(marker))
    .map((row) => `${String(row.tool)}:${String(row.outcome)}`);
}

/**
 * cara, signed in on `era` with a client that answers yes, runs `touch` of a file named after
 * `name` on prod: asked once (host, exact command, class, rule), and the file is there. The call's
 * audit rows, as tool:outcome.
 */
async function runConfirmed(era: McpEra, name: string): Promise<string[]> {
  const cara = await signIn('cara', { era, answer: answering('yes') });
  const file = join(stack.sshd.home, `${name}-${RUN}`);
  const before = asked.length;
  const ran = await call(cara, 'ssh_exec_command', { host: 'prod', command: `touch ${file}` });
  expect(ran.isError, ran.text).toBe(false);
  expect(ran.text).toContain('EXIT CODE');
  expect(asked.length).toBe(before + 1);
  for (const part of ['prod', `touch ${file}`, 'mutating', 'prod changes need your own yes']) expect(asked.at(-1)).toContain(part);
  expect(existsSync(file)).toBe(true);
  return auditTools('cara', `${name}-${RUN}`);
}

async function submit(page: Page, selector: string): Promise<number | undefined> {
  const [response] = await Promise.all([page.waitForNavigation(), page.click(selector)]);
  return response?.status();
}

async function browserSignIn(username: string, password = passwords.get(username) ?? ''): Promise<Page> {
  const page = await (await browser.newContext({ viewport: { width: 1200, height: 900 } })).newPage();
  // Not signed in: the sign-in page, which comes back here afterwards.
  await page.goto(`${stack.worker.url}/approvals/mine`);
  await page.fill('#username', username);
  await page.fill('#password', password);
  expect(await submit(page, 'main button[type=submit]')).toBe(200);
  expect(new URL(page.url()).pathname).toBe('/approvals/mine');
  return page;
}

beforeAll(async () => {
  stack = await startStack({ relay: (sshd) => ({ configFile: relayConfig(sshd) }) });
  const admin = adminApi(stack.worker);
  for (const username of ['cara', 'omar']) {
    const added = await admin.post('users', { username, groups: ['ops'] });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    passwords.set(username, String(added.body.password));
  }
  const saved = await admin.put('policy', POLICY);
  expect(saved.status, JSON.stringify(saved.body)).toBe(200);
  browser = await launchBrowser();
});

afterAll(async () => {
  for (const session of sessions) await session.close().catch(() => undefined);
  await browser?.close();
  await stack?.stop();
});

describe('own confirmation', () => {
  it('asks a 2025 client that declared elicitation during the call, and runs the command once on yes', async () => {
    expect(await runConfirmed('2025-11-25', 'confirmed')).toEqual(
      expect.arrayContaining(['approval_requested:ok', 'approval_approved:ok', 'approval_used:ok', 'ssh_exec_command:ok']),
    );
  });

  it('runs nothing when the 2025 client declines, and audits the refusal', async () => {
    const cara = await signIn('cara', { era: '2025-11-25', answer: answering('no') });
    const file = join(stack.sshd.home, `declined-${RUN}`);
    const refused = await call(cara, 'ssh_exec_command', { host: 'prod', command: `touch ${file}` });
    expect(refused.isError).toBe(true);
    expect(refused.text).toContain('approval_refused');
    expect(refused.text).toContain('declined');
    expect(existsSync(file)).toBe(false);
    const tools = await auditTools('cara', `declined-${RUN}`);
    expect(tools).toEqual(expect.arrayContaining(['approval_requested:ok', 'approval_rejected:ok', 'ssh_exec_command:denied']));
    expect(tools).not.toContain('ssh_exec_command:ok');
  });

  it('asks a 2026-07-28 client that declared elicitation by input_required, and runs the command once when its retry says yes', async () => {
    const tools = await runConfirmed('2026-07-28', 'retried');
    expect(tools).toEqual(expect.arrayContaining(['approval_approved:ok', 'approval_used:ok', 'ssh_exec_command:ok']));
    // The retry decided the request the first round opened: one request, and none left waiting.
    expect(tools.filter((tool) => tool === 'approval_requested:ok')).toHaveLength(1);
    const waiting = await adminApi(stack.worker).get('approvals');
    expect((waiting.body.approvals as Array<{ command: string }>).filter((approval) => approval.command.includes(`retried-${RUN}`))).toHaveLength(0);
  });

  it('runs nothing when the 2026-07-28 client says no on its retry, and audits the refusal', async () => {
    const cara = await signIn('cara', { era: '2026-07-28', answer: answering('no') });
    const file = join(stack.sshd.home, `retry-declined-${RUN}`);
    const refused = await call(cara, 'ssh_exec_command', { host: 'prod', command: `touch ${file}` });
    expect(refused.isError).toBe(true);
    expect(refused.text).toContain('approval_refused');
    expect(refused.text).toContain('declined');
    expect(existsSync(file)).toBe(false);
    const tools = await auditTools('cara', `retry-declined-${RUN}`);
    expect(tools).toEqual(expect.arrayContaining(['approval_requested:ok', 'approval_rejected:ok']));
    expect(tools).not.toContain('ssh_exec_command:ok');
  });

  it('takes no yes from a 2026-07-28 request that was not asked this very question: sent unasked, carried into another command, or with a made-up state', async () => {
    const cara = await signIn('cara', { era: '2026-07-28' });
    const yes = { confirm: { action: 'accept', content: { confirm: true } } };
    const ask = (command: string, retry: Record<string, unknown>): Promise<Rpc> =>
      modernRpc(stack.worker.mcpUrl, cara, 'tools/call', { name: 'ssh_exec_command', arguments: { host: 'prod', command }, ...retry }, 'ssh_exec_command', {
        elicitation: { form: {} },
      });
    const first = join(stack.sshd.home, `unasked-${RUN}`);
    const unasked = await ask(`touch ${first}`, { inputResponses: yes });
    expect(unasked.result, JSON.stringify(unasked)).toMatchObject({ resultType: 'input_required' });
    const state = String(unasked.result?.requestState);
    expect(JSON.stringify(unasked.result?.inputRequests)).toContain(`touch ${first}`);
    const other = join(stack.sshd.home, `carried-${RUN}`);
    const carried = await ask(`touch ${other}`, { inputResponses: yes, requestState: state });
    expect(carried.result).toMatchObject({ resultType: 'input_required' });
    expect(carried.result?.requestState).not.toBe(state);
    const madeUp = await ask(`touch ${first}`, { inputResponses: yes, requestState: `record:${'0'.repeat(32)}` });
    expect(madeUp.result).toMatchObject({ resultType: 'input_required', requestState: state });
    expect(existsSync(first)).toBe(false);
    expect(existsSync(other)).toBe(false);
    // The yes with its own question's state runs exactly that command, once.
    const answered = await ask(`touch ${first}`, { inputResponses: yes, requestState: state });
    expect(answered.result, JSON.stringify(answered)).toMatchObject({ isError: false, structuredContent: { exit_code: 0 } });
    expect(existsSync(first)).toBe(true);
    const again = await ask(`touch ${first}`, { inputResponses: yes, requestState: state });
    expect(again.result).toMatchObject({ resultType: 'input_required' });
    expect(again.result?.requestState).not.toBe(state);
  });

  it('answers a 2026-07-28 client without elicitation with the pending id and the page; the requester confirms there (not another user, not without CSRF), then it runs', async () => {
    const cara = await signIn('cara', { era: '2026-07-28' });
    const file = join(stack.sshd.home, `paged-${RUN}`);
    const command = `touch ${file}`;
    const before = asked.length;
    const held = await call(cara, 'ssh_exec_command', { host: 'prod', command, timeout: 2 });
    expect(held.isError).toBe(true);
    expect(held.text).toContain('approval_pending');
    expect(held.text).toContain(`${stack.worker.url}/approvals/mine`);
    expect(asked.length).toBe(before);
    const id = /approval_id "([0-9a-f]{32})"/.exec(held.text)?.[1] ?? '';
    expect(id).toMatch(/^[0-9a-f]{32}$/);

    // Another member of the team, and even a deployment admin (who decides it on the admin page, not
    // here), sees nothing of it on their own page and cannot decide it there.
    for (const [username, password] of [
      ['omar', passwords.get('omar') ?? ''],
      [stack.worker.adminUser, stack.worker.adminPassword],
    ] as const) {
      const other = await browserSignIn(username, password);
      expect(await other.locator('[data-approval]').count()).toBe(0);
      const csrf = (await other.locator('input[name=csrf]').first().getAttribute('value')) ?? '';
      const theirs = await other.request.post(`${stack.worker.url}/approvals/mine/decide`, { form: { csrf, id, verdict: 'approve' } });
      expect(theirs.status()).toBe(404);
    }

    const page = await browserSignIn('cara');
    const card = page.locator(`[data-approval="${id}"]`);
    expect(await card.locator('pre.command').textContent()).toBe(command);
    expect((await card.textContent()) ?? '').toContain('prod changes need your own yes');
    await screenshot(page, 'own-approvals-01-pending');
    // A post without this browser's CSRF token changes nothing.
    const forged = await page.request.post(`${stack.worker.url}/approvals/mine/decide`, { form: { id, verdict: 'approve' } });
    expect(forged.status()).toBe(403);
    expect((await call(cara, 'ssh_approval_status', { approval_id: id })).text).toContain('pending');

    expect(await submit(page, `[data-approval="${id}"] button:has-text("Confirm")`)).toBe(200);
    expect(await card.count()).toBe(0);
    const ran = await call(cara, 'ssh_approval_status', { approval_id: id });
    expect(ran.isError, ran.text).toBe(false);
    expect(existsSync(file)).toBe(true);
    expect(await auditTools('cara', `paged-${RUN}`)).toEqual(expect.arrayContaining(['approval_approved:ok', 'approval_used:ok']));
  });

  it('refuses to carry on a confirmation once another rule holds the call: the requester moved into a group that needs a second person', async () => {
    const cara = await signIn('cara', { era: '2025-11-25' });
    const file = join(stack.sshd.home, `regrouped-${RUN}`);
    const held = await call(cara, 'ssh_exec_command', { host: 'prod', command: `touch ${file}`, timeout: 2 });
    const id = /approval_id "([0-9a-f]{32})"/.exec(held.text)?.[1] ?? '';
    expect(id, held.text).toMatch(/^[0-9a-f]{32}$/);
    const page = await browserSignIn('cara');
    expect(await submit(page, `[data-approval="${id}"] button:has-text("Confirm")`)).toBe(200);
    const admin = adminApi(stack.worker);
    expect((await admin.patch('users/cara', { groups: ['ops', 'strict'] })).status).toBe(200);
    try {
      const refused = await call(cara, 'ssh_approval_status', { approval_id: id });
      expect(refused.isError, refused.text).toBe(true);
      expect(refused.text).toContain('approval_refused');
      expect(refused.text).toContain("rule 1 for the deployment's admins");
      expect(existsSync(file)).toBe(false);
    } finally {
      expect((await admin.patch('users/cara', { groups: ['ops'] })).status).toBe(200);
    }
  });

  it('answers a client without elicitation with the pending id and the page, asking nothing', async () => {
    const cara = await signIn('cara', { era: '2025-11-25' });
    const held = await call(cara, 'ssh_exec_command', { host: 'prod', command: `touch ${join(stack.sshd.home, `plain-${RUN}`)}`, timeout: 2 });
    expect(held.isError).toBe(true);
    expect(held.text).toContain('approval_pending');
    expect(held.text).toContain('for your own confirmation');
    expect(held.text).toContain(`${stack.worker.url}/approvals/mine`);
  });
});
