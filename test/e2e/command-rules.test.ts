/**
 * Command rules, the dry run and freeze through the whole stack (real Worker, relay, sshd, MCP
 * clients signed in through OAuth): a viewer with a read-only rule runs `df -h` but not
 * `df -h; touch x`, and nothing of the refused call reaches the relay; a deny for mkfs binds the
 * bootstrap admin; a command that needs approval is held until a person decides, then runs once;
 * ssh_check_command answers without running anything; a freeze refuses the very next call and can
 * cancel running jobs.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addTeam, adminApi } from '../harness/admin-api.ts';
import { relayRequestsDuring as requestsDuring } from '../harness/relay.ts';
import { connectMcpClient, type ConnectedClient } from '../harness/mcp-client.ts';
import type { TestSshd } from '../harness/sshd.ts';
import { startStack, textOf, type Stack } from '../harness/stack.ts';

let stack: Stack;
const sessions: ConnectedClient[] = [];
const passwords = new Map<string, string>();
const RUN = `${process.pid}${Date.now() % 100_000}`;

function relayConfig(sshd: TestSshd): unknown {
  const base = { address: '127.0.0.1', port: sshd.port, user: sshd.user, key_path: sshd.privateKeyPath };
  return {
    relay_id: 'rules-relay',
    known_hosts: [sshd.knownHostsPath],
    hosts: [
      { name: 'stage', ...base, labels: { env: 'staging' }, jobs_dir: `~/.mcp-remote-exec/rules-jobs-${RUN}` },
      { name: 'prod', ...base, labels: { env: 'prod' } },
    ],
  };
}

/** The README's example, on top of the grants. */
const POLICY = {
  version: 1,
  grants: [
    { effect: 'allow', subjects: ['group:support'], role: 'viewer', hosts: ['*'] },
    { effect: 'allow', subjects: ['group:ops'], role: 'operator', hosts: ['*'] },
  ],
  commandRules: [
    { effect: 'allow', roles: ['viewer'], hosts: ['env=staging'], classes: ['read-only'], note: 'viewers may look around staging' },
    { effect: 'approve', roles: ['operator'], hosts: ['env=prod'], classes: ['privileged'], note: 'privileged commands on prod wait for a person' },
    { effect: 'deny', hosts: ['*'], programs: ['mkfs*'], note: 'nobody formats disks' },
  ],
};

async function signIn(username: string): Promise<ConnectedClient> {
  const password = passwords.get(username);
  if (!password) throw new Error(`no password for ${username}`);
  const session = await connectMcpClient(stack.worker.mcpUrl, { username, password });
  sessions.push(session);
  return session;
}

interface Called {
  text: string;
  isError: boolean;
  structured: Record<string, unknown>;
}

async function call(session: ConnectedClient, name: string, args: Record<string, unknown>): Promise<Called> {
  const result = await session.client.callTool({ name, arguments: args }, undefined, { timeout: 60_000 });
  return { text: textOf(result as never), isError: Boolean(result.isError), structured: (result.structuredContent ?? {}) as Record<string, unknown> };
}

/** Relay requests completed while `action` ran. */
function relayRequestsDuring(action: () => Promise<unknown>): Promise<number> {
  return requestsDuring(stack.relay, action);
}

/** The id of the pending approval for `command`, once the held call has asked for it (bounded). */
async function waitForApproval(command: string): Promise<string> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const reply = await adminApi(stack.worker).get('approvals');
    const found = (reply.body.approvals as Array<{ id: string; command: string }> | undefined)?.find((approval) => approval.command === command);
    if (found) return found.id;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no approval was asked for ${command}`);
}

async function auditRows(query: string): Promise<Array<Record<string, unknown>>> {
  const reply = await adminApi(stack.worker).get(`audit?${query}`);
  expect(reply.status).toBe(200);
  return reply.body.entries as Array<Record<string, unknown>>;
}

beforeAll(async () => {
  stack = await startStack({ relay: (sshd) => ({ configFile: relayConfig(sshd) }) });
  for (const [username, password] of await addTeam(
    stack.worker,
    [
      ['vera', ['support']],
      ['otto', ['ops']],
      ['olga', ['ops']],
    ],
    POLICY,
  ))
    passwords.set(username, password);
});

afterAll(async () => {
  for (const session of sessions) await session.close().catch(() => undefined);
  await stack?.stop();
});

describe('command rules', () => {
  it('let a viewer run df -h on staging, but not df -h; touch x, and nothing of the refused call reaches the relay', async () => {
    const vera = await signIn('vera');
    const ran = await call(vera, 'ssh_exec_command', { host: 'stage', command: 'df -h' });
    expect(ran.isError, ran.text).toBe(false);
    expect(ran.text).toMatch(/Filesystem/);
    const marker = join(stack.sshd.home, `vera-was-here-${RUN}`);
    let refused: Called | undefined;
    const requests = await relayRequestsDuring(async () => {
      refused = await call(vera, 'ssh_exec_command', { host: 'stage', command: `df -h; touch ${marker}` });
    });
    expect(refused?.isError).toBe(true);
    expect(refused?.text).toContain('access_denied');
    expect(refused?.text).toContain('no command rule allows this command');
    expect(requests).toBe(0);
    expect(existsSync(marker)).toBe(false);
    const rows = await auditRows('user=vera&tool=ssh_exec_command');
    expect(rows).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ target: 'df -h', outcome: 'ok' }),
        expect.objectContaining({ target: `df -h; touch ${marker}`, outcome: 'denied', code: 'access_denied' }),
      ]),
    );
  });

  it('keep the allow to its hosts: the viewer runs nothing on prod', async () => {
    const vera = await signIn('vera');
    const refused = await call(vera, 'ssh_exec_command', { host: 'prod', command: 'df -h' });
    expect(refused.isError).toBe(true);
    expect(refused.text).toContain('access_denied');
  });

  it('bind the bootstrap admin: a deny of mkfs* refuses it, and nothing reaches the relay', async () => {
    let refused: Awaited<ReturnType<Stack['call']>> | undefined;
    const requests = await relayRequestsDuring(async () => {
      refused = await stack.call('ssh_exec_command', { host: 'stage', command: 'mkfs.ext4 /dev/null' });
    });
    expect(refused?.isError).toBe(true);
    const text = refused ? textOf(refused) : '';
    expect(text).toContain('access_denied');
    expect(text).toContain('Command rule 2 (nobody formats disks)');
    expect(requests).toBe(0);
    // The same admin runs other commands as before.
    const ran = await stack.call('ssh_exec_command', { host: 'stage', command: 'echo still-admin' });
    expect(textOf(ran)).toContain('still-admin');
  });

  it('hold a command that needs approval until a person approves it, then run it once, with nothing sent before', async () => {
    const otto = await signIn('otto');
    const command = `systemctl restart nginx-${RUN}a`;
    let held: Called | undefined;
    const requests = await relayRequestsDuring(async () => {
      const pending = call(otto, 'ssh_exec_command', { host: 'prod', command, timeout: 30 });
      const approval = await waitForApproval(command);
      // Nothing has reached the relay while the call waits.
      expect((stack.relay.process.outputSince(0).match(new RegExp(`nginx-${RUN}a`, 'g')) ?? []).length).toBe(0);
      const decided = await adminApi(stack.worker).post(`approvals/${approval}/approve`, {});
      expect(decided.status, JSON.stringify(decided.body)).toBe(200);
      held = await pending;
    });
    expect(held?.isError, held?.text).toBe(false);
    expect(held?.text).toContain('EXIT CODE');
    expect(requests).toBe(1);
    const rows = await auditRows('user=otto&limit=1000');
    const tools = rows.filter((row) => String(row.target ?? '').includes(`nginx-${RUN}a`)).map((row) => `${String(row.tool)}:${String(row.outcome)}`);
    expect(tools).toEqual(expect.arrayContaining(['approval_requested:ok', 'approval_used:ok', 'ssh_exec_command:ok']));
  });

  it('answer with an approval id when nobody decides in time; ssh_approval_status runs it once approved, for its requester only', async () => {
    const otto = await signIn('otto');
    const olga = await signIn('olga');
    const command = `systemctl restart nginx-${RUN}b`;
    const held = await call(otto, 'ssh_exec_command', { host: 'prod', command, timeout: 2 });
    expect(held.isError).toBe(true);
    expect(held.text).toContain('approval_pending');
    expect(held.text).toContain('The command was NOT run');
    const id = /approval_id "([0-9a-f]{32})"/.exec(held.text)?.[1] ?? '';
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    const waiting = await call(otto, 'ssh_approval_status', { approval_id: id });
    expect(waiting.text).toContain('pending');
    // Another user gets the answer an unknown id gets, before and after the approval.
    const theirs = await call(olga, 'ssh_approval_status', { approval_id: id });
    const madeUp = await call(olga, 'ssh_approval_status', { approval_id: 'c'.repeat(32) });
    expect(theirs.text.replace(id, 'ID')).toBe(madeUp.text.replace('c'.repeat(32), 'ID'));
    expect((await adminApi(stack.worker).post(`approvals/${id}/approve`, {})).status).toBe(200);
    expect((await call(olga, 'ssh_approval_status', { approval_id: id })).text.replace(id, 'ID')).toBe(madeUp.text.replace('c'.repeat(32), 'ID'));
    let ran: Called | undefined;
    const requests = await relayRequestsDuring(async () => {
      ran = await call(otto, 'ssh_approval_status', { approval_id: id });
    });
    expect(ran?.text).toContain('EXIT CODE');
    expect(requests).toBe(1);
    const again = await call(otto, 'ssh_approval_status', { approval_id: id });
    expect(again.isError).toBe(true);
    expect(again.text).toContain('already used');
  });

  it('refuse a call whose approval is rejected, and hold a job the same way', async () => {
    const otto = await signIn('otto');
    const command = `systemctl restart nginx-${RUN}c`;
    const pending = call(otto, 'ssh_exec_command', { host: 'prod', command, timeout: 30 });
    const approval = await waitForApproval(command);
    expect((await adminApi(stack.worker).post(`approvals/${approval}/reject`, {})).status).toBe(200);
    const refused = await pending;
    expect(refused.isError).toBe(true);
    expect(refused.text).toContain('approval_refused');
    expect(refused.text).toContain('rejected');
    // A job start waits for its approval like a command.
    const jobCommand = `systemctl restart nginx-${RUN}d`;
    const job = call(otto, 'ssh_start_job', { host: 'prod', command: jobCommand });
    const jobApproval = await waitForApproval(jobCommand);
    expect((await adminApi(stack.worker).post(`approvals/${jobApproval}/approve`, {})).status).toBe(200);
    const started = await job;
    expect(started.isError, started.text).toBe(false);
    expect(started.structured).toMatchObject({ command: jobCommand });
  });

  it('ask the gate again once a held call is approved: frozen while it waited, it does not run', async () => {
    const otto = await signIn('otto');
    const command = `systemctl restart nginx-${RUN}e`;
    const admin = adminApi(stack.worker);
    let refused: Called | undefined;
    try {
      const requests = await relayRequestsDuring(async () => {
        const pending = call(otto, 'ssh_exec_command', { host: 'prod', command, timeout: 30 });
        const approval = await waitForApproval(command);
        expect((await admin.post('freeze', { scope: 'user', name: 'otto' })).status).toBe(200);
        expect((await admin.post(`approvals/${approval}/approve`, {})).status).toBe(200);
        refused = await pending;
      });
      expect(requests).toBe(0);
    } finally {
      expect((await admin.post('unfreeze', { scope: 'user', name: 'otto' })).status).toBe(200);
    }
    expect(refused?.isError).toBe(true);
    expect(refused?.text).toContain('access_denied');
    expect(refused?.text).toContain('frozen');
    const rows = await auditRows('user=otto&tool=ssh_exec_command&outcome=denied');
    expect(rows).toEqual(expect.arrayContaining([expect.objectContaining({ target: command, code: 'access_denied' })]));
  });

  it('ask the gate again once a held call is approved: the policy edited while it waited, it does not run', async () => {
    const otto = await signIn('otto');
    const command = `systemctl restart nginx-${RUN}f`;
    const admin = adminApi(stack.worker);
    const stricter = {
      ...POLICY,
      commandRules: [
        {
          effect: 'approve',
          roles: ['operator'],
          hosts: ['env=prod'],
          programs: ['systemctl'],
          approvers: ['group:support'],
          note: 'support decides restarts',
        },
        ...POLICY.commandRules,
      ],
    };
    let refused: Called | undefined;
    try {
      const requests = await relayRequestsDuring(async () => {
        const pending = call(otto, 'ssh_exec_command', { host: 'prod', command, timeout: 30 });
        const approval = await waitForApproval(command);
        expect((await admin.put('policy', stricter)).status).toBe(200);
        expect((await admin.post(`approvals/${approval}/approve`, {})).status).toBe(200);
        refused = await pending;
      });
      expect(requests).toBe(0);
    } finally {
      expect((await admin.put('policy', POLICY)).status).toBe(200);
    }
    expect(refused?.isError).toBe(true);
    expect(refused?.text).toContain('approval_refused');
    expect(refused?.text).toContain('approvals do not outlive a policy edit');
    const rows = await auditRows('user=otto&tool=ssh_exec_command&outcome=denied');
    expect(rows).toEqual(expect.arrayContaining([expect.objectContaining({ target: command, code: 'approval_refused' })]));
  });
});

describe('ssh_check_command', () => {
  it('says what policy would do and why, runs nothing, and is audited as checked', async () => {
    const vera = await signIn('vera');
    let checked: Called | undefined;
    const requests = await relayRequestsDuring(async () => {
      checked = await call(vera, 'ssh_check_command', { host: 'stage', command: 'df -h; touch x' });
    });
    expect(requests).toBe(0);
    expect(checked?.isError, checked?.text).toBe(false);
    expect(checked?.structured).toMatchObject({
      host: 'stage',
      class: 'mutating',
      decision: { effect: 'deny', rule: null, role: 'viewer' },
    });
    expect((checked?.structured.programs as string[]) ?? []).toEqual(expect.arrayContaining(['df', 'touch']));
    expect(checked?.text).toContain('Decision: deny');
    expect(checked?.text).toContain('Nothing was run.');
    const allowed = await call(vera, 'ssh_check_command', { host: 'stage', command: 'df -h' });
    expect(allowed.structured).toMatchObject({
      class: 'read-only',
      decision: { effect: 'allow', rule: { index: 0, note: 'viewers may look around staging' } },
    });
    const otto = await signIn('otto');
    const approve = await call(otto, 'ssh_check_command', { host: 'prod', command: 'sudo reboot' });
    expect(approve.structured).toMatchObject({ class: 'privileged', decision: { effect: 'approve', rule: { index: 1 }, approvers: [], role: 'operator' } });
    const rows = await auditRows('user=vera&tool=ssh_check_command');
    expect(rows).toEqual(expect.arrayContaining([expect.objectContaining({ target: 'df -h; touch x', outcome: 'checked', host: 'stage' })]));
  });

  it('checks a command as sudo: true runs it: df -h, allowed to a viewer, is privileged and denied under sudo', async () => {
    const vera = await signIn('vera');
    const plain = await call(vera, 'ssh_check_command', { host: 'stage', command: 'df -h' });
    expect(plain.structured).toMatchObject({ class: 'read-only', decision: { effect: 'allow' } });
    const underSudo = await call(vera, 'ssh_check_command', { host: 'stage', command: 'df -h', sudo: true });
    expect(underSudo.isError, underSudo.text).toBe(false);
    expect(underSudo.structured).toMatchObject({ class: 'privileged', decision: { effect: 'deny', role: 'viewer' } });
    expect(underSudo.structured.programs).toEqual(expect.arrayContaining(['sudo', 'df']));
    const rows = await auditRows('user=vera&tool=ssh_check_command');
    expect(rows).toEqual(expect.arrayContaining([expect.objectContaining({ target: 'sudo: df -h', outcome: 'checked' })]));
  });

  it('reports a host the caller cannot see like a missing one', async () => {
    const vera = await signIn('vera');
    const missing = await call(vera, 'ssh_check_command', { host: 'nowhere', command: 'ls' });
    expect(missing.isError).toBe(true);
    expect(missing.text).toContain('host_not_configured');
  });
});

describe('the policy revision', () => {
  it('counts every save, and rides in the policy answer', async () => {
    const admin = adminApi(stack.worker);
    const before = await fetch(`${stack.worker.url}/admin/api/policy`, {
      headers: { Authorization: `Basic ${Buffer.from(`${stack.worker.adminUser}:${stack.worker.adminPassword}`).toString('base64')}` },
    });
    const revision = Number(before.headers.get('Policy-Revision'));
    expect(revision).toBeGreaterThanOrEqual(1);
    // The body is the document itself: it goes back in as it came out.
    const document = (await before.json()) as Record<string, unknown>;
    expect(document).toEqual(POLICY);
    expect((await admin.put('policy', document)).status).toBe(200);
    const otto = await signIn('otto');
    const checked = await call(otto, 'ssh_check_command', { host: 'stage', command: 'ls' });
    expect((checked.structured.decision as { policy_revision: number }).policy_revision).toBe(revision + 1);
  });
});

describe('freeze', () => {
  it('of a user refuses their very next call, audited, nothing sent; others go on; unfreeze restores it', async () => {
    const otto = await signIn('otto');
    const olga = await signIn('olga');
    expect((await call(otto, 'ssh_exec_command', { host: 'stage', command: 'echo before' })).isError).toBe(false);
    const admin = adminApi(stack.worker);
    const frozen = await admin.post('freeze', { scope: 'user', name: 'otto' });
    expect(frozen.status, JSON.stringify(frozen.body)).toBe(200);
    let refused: Called | undefined;
    const requests = await relayRequestsDuring(async () => {
      refused = await call(otto, 'ssh_exec_command', { host: 'stage', command: 'echo after' });
    });
    expect(refused?.isError).toBe(true);
    expect(refused?.text).toContain('access_denied');
    expect(refused?.text).toMatch(/frozen by an admin \(admin\) at \d{4}-/);
    expect(requests).toBe(0);
    expect((await call(otto, 'ssh_list_hosts', { check: false })).text).toContain('frozen');
    expect((await call(olga, 'ssh_exec_command', { host: 'stage', command: 'echo olga' })).isError).toBe(false);
    const rows = await auditRows('user=otto&tool=ssh_exec_command&outcome=denied');
    expect(rows).toEqual(expect.arrayContaining([expect.objectContaining({ target: 'echo after', code: 'access_denied' })]));
    expect((await admin.post('unfreeze', { scope: 'user', name: 'otto' })).status).toBe(200);
    expect((await call(otto, 'ssh_exec_command', { host: 'stage', command: 'echo thawed' })).text).toContain('thawed');
  });

  it('of the deployment refuses everyone, the bootstrap admin too; of a relay refuses calls through it', async () => {
    const admin = adminApi(stack.worker);
    expect((await admin.post('freeze', { scope: 'deployment' })).status).toBe(200);
    try {
      const refused = await stack.call('ssh_exec_command', { host: 'stage', command: 'echo no' });
      expect(textOf(refused)).toMatch(/This deployment was frozen by an admin/);
      expect((await admin.get('freeze')).body.freeze).toMatchObject({ deployment: { by: 'admin' } });
    } finally {
      expect((await admin.post('unfreeze', { scope: 'deployment' })).status).toBe(200);
    }
    expect((await admin.post('freeze', { scope: 'relay', name: 'rules-relay' })).status).toBe(200);
    try {
      const refused = await stack.call('ssh_read_file', { host: 'stage', path: '.profile' });
      expect(textOf(refused)).toMatch(/Relay "rules-relay" was frozen by an admin/);
    } finally {
      expect((await admin.post('unfreeze', { scope: 'relay', name: 'rules-relay' })).status).toBe(200);
    }
    expect(textOf(await stack.call('ssh_exec_command', { host: 'stage', command: 'echo open' }))).toContain('open');
  });

  it('refuses malformed requests clearly', async () => {
    const admin = adminApi(stack.worker);
    for (const body of [
      { scope: 'galaxy' },
      { scope: 'user' },
      { scope: 'user', name: 'a b' },
      { scope: 'deployment', name: 'x' },
      { scope: 'user', name: 'x', extra: 1 },
    ]) {
      const reply = await admin.post('freeze', body);
      expect(reply.status, JSON.stringify(body)).toBe(400);
      expect(String(reply.body.message)).toContain('Nothing was frozen');
    }
    expect((await admin.post('unfreeze', { scope: 'deployment', cancelJobs: true })).status).toBe(400);
    expect((await admin.get('freeze')).body.freeze).toEqual({ deployment: null, users: [], relays: [] });
    const asVera = await adminApi(stack.worker, { username: 'vera', password: passwords.get('vera') ?? '' }).post('freeze', { scope: 'deployment' });
    expect(asVera.status).toBe(403);
  });

  it('with cancelJobs cancels the scope running jobs in the same action and reports how many', async () => {
    const olga = await signIn('olga');
    const started = await call(olga, 'ssh_start_job', { host: 'stage', command: `sleep 300 # rules-${RUN}` });
    expect(started.isError, started.text).toBe(false);
    const jobId = String(started.structured.job_id);
    const admin = adminApi(stack.worker);
    const frozen = await admin.post('freeze', { scope: 'user', name: 'olga', cancelJobs: true });
    expect(frozen.status, JSON.stringify(frozen.body)).toBe(200);
    expect(frozen.body.jobs).toEqual({ found: 1, cancelled: 1, failed: [] });
    expect((await call(olga, 'ssh_job_status', { job_id: jobId })).text).toContain('frozen');
    expect((await admin.post('unfreeze', { scope: 'user', name: 'olga' })).status).toBe(200);
    const status = await call(olga, 'ssh_job_status', { job_id: jobId });
    expect(status.structured.state).toBe('cancelled');
  });
});
