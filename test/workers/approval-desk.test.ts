/**
 * The ApprovalDesk (worker/approvals/approval-desk.ts) in real workerd, through the executor seam
 * (worker/approvals/approvals.ts): an approval runs the one call it was given for, once, for the
 * user and client who asked, on the policy it was decided under. Each replay the issue names is
 * refused with its own reason, and the approval stays usable by the right call afterwards (so it is
 * the mismatch that refused it). Also: who may decide and see a record, the alarm's expiry, the audit
 * rows, and ssh_approval_status through a real MCP client.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport, McpServer, type CallToolResult } from '@modelcontextprotocol/server';
import { env, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { readAudit } from '../../worker/audit/audit-log.ts';
import { approvalDesk, type ApprovalDesk } from '../../worker/approvals/approval-desk.ts';
import type { ApprovalCall } from '../../worker/approvals/approval-call.ts';
import type { ApprovalRecord } from '../../worker/approvals/approval-record.ts';
import { registerApprovalStatusTool } from '../../worker/approvals/approval-status-tool.ts';
import { bindingFor, consumeApproval, holdForApproval, requestApproval, waitForDecision, type ApprovalAsk } from '../../worker/approvals/approvals.ts';
import { teamDirectory } from '../../worker/team/team-directory.ts';

const ADMIN = 'admin';

function unique(prefix: string): string {
  return `${prefix}${crypto.randomUUID().slice(0, 8)}`;
}

async function user(groups: string[] = []): Promise<{ userId: string; username: string; client: string }> {
  const username = unique('u');
  const added = await teamDirectory(env).addUser(username, 'pbkdf2-sha256:1:aa:bb', groups);
  if (!added.ok) throw new Error(added.message);
  return { userId: `builtin/${username}`, username, client: 'claude-test' };
}

function call(overrides: Partial<ApprovalCall> = {}): ApprovalCall {
  return { tool: 'ssh_exec_command', relay: 'relay-a', host: 'relay-a/db1', guest: null, command: 'systemctl restart nginx', timeoutMs: 30_000, ...overrides };
}

function ask(caller: ApprovalAsk['caller'], overrides: Partial<ApprovalAsk> = {}): ApprovalAsk {
  return {
    caller,
    call: call(),
    classification: { class: 'privileged', programs: ['systemctl'], reasons: ['runs systemctl restart'] },
    decision: { effect: 'approve', rule: { index: 2, note: 'prod needs a second person' }, approvers: [] },
    policyRevision: 7,
    ...overrides,
  };
}

/** An approval asked by `caller` for `call()` and approved by the deployment admin. */
async function approved(caller: ApprovalAsk['caller'], overrides: Partial<ApprovalAsk> = {}): Promise<string> {
  const opened = await requestApproval(env, ask(caller, overrides));
  if (!opened.ok) throw new Error(opened.error.message);
  const decided = await approvalDesk(env).decide(opened.value.id, { username: ADMIN }, 'approve');
  if (!decided.ok) throw new Error(decided.error.message);
  return opened.value.id;
}

async function refusal(id: string, binding: Awaited<ReturnType<typeof bindingFor>>): Promise<string> {
  const used = await consumeApproval(env, id, binding);
  if (used.ok) throw new Error('the approval was used');
  return `${used.error.code}: ${used.error.message}`;
}

describe('using an approval (replays)', () => {
  it('runs the exact call it was given for once, and refuses a second use', async () => {
    const alice = await user();
    const id = await approved(alice);
    const binding = await bindingFor(alice, call(), 7);
    expect(await consumeApproval(env, id, binding)).toMatchObject({ ok: true, value: { id, state: 'used', rule: { index: 2 } } });
    expect(await refusal(id, binding)).toMatch(/^approval_refused: .*already used/);
  });

  it('refuses a command that differs by one byte', async () => {
    const alice = await user();
    const id = await approved(alice);
    expect(await refusal(id, await bindingFor(alice, call({ command: 'systemctl restart nginx ' }), 7))).toMatch(/command or its timeout differs/);
    expect(await refusal(id, await bindingFor(alice, call({ timeoutMs: 30_001 }), 7))).toMatch(/command or its timeout differs/);
    expect((await consumeApproval(env, id, await bindingFor(alice, call(), 7))).ok).toBe(true);
  });

  it('refuses another host, another relay, another container', async () => {
    const alice = await user();
    const id = await approved(alice);
    expect(await refusal(id, await bindingFor(alice, call({ host: 'relay-a/db2' }), 7))).toMatch(/it is for host relay-a\/db1, not relay-a\/db2/);
    expect(await refusal(id, await bindingFor(alice, call({ relay: 'relay-b', host: 'relay-b/db1' }), 7))).toMatch(/for host relay-a\/db1/);
    expect(await refusal(id, await bindingFor(alice, call({ guest: { kind: 'lxc', id: '101' } }), 7))).toMatch(/another container or VM/);
    expect((await consumeApproval(env, id, await bindingFor(alice, call(), 7))).ok).toBe(true);
  });

  it('answers another user as if the id did not exist, and leaves it for its owner', async () => {
    const alice = await user();
    const mallory = await user();
    const id = await approved(alice);
    expect(await refusal(id, await bindingFor(mallory, call(), 7))).toBe(`approval_not_found: No approval ${id} of yours exists.`);
    expect(await refusal('0123456789abcdef0123456789abcdef', await bindingFor(mallory, call(), 7))).toMatch(/^approval_not_found/);
    expect((await consumeApproval(env, id, await bindingFor(alice, call(), 7))).ok).toBe(true);
  });

  it('refuses the same user on another client', async () => {
    const alice = await user();
    const id = await approved(alice);
    expect(await refusal(id, await bindingFor({ ...alice, client: 'other-client' }, call(), 7))).toMatch(/another client \(claude-test\)/);
    expect((await consumeApproval(env, id, await bindingFor(alice, call(), 7))).ok).toBe(true);
  });

  it('refuses an approval decided under an older policy revision', async () => {
    const alice = await user();
    const id = await approved(alice);
    expect(await refusal(id, await bindingFor(alice, call(), 8))).toMatch(/policy changed .*revision 7, now 8/);
  });

  it('refuses an expired one: approved but not used in time, and pending past its hour', async () => {
    const alice = await user();
    const id = await approved(alice);
    const waiting = await requestApproval(env, ask(alice));
    if (!waiting.ok) throw new Error(waiting.error.message);
    // Move both records' times into the past, then let the alarm run as it would.
    await runInDurableObject(approvalDesk(env), async (_desk: ApprovalDesk, state) => {
      for (const target of [id, waiting.value.id]) {
        const row = state.storage.sql.exec<{ record: string }>('SELECT record FROM approvals WHERE id = ?', target).one();
        const record = JSON.parse(row.record) as ApprovalRecord;
        const past = { ...record, expiresAt: Date.now() - 1, approvedUntil: record.approvedUntil === null ? null : Date.now() - 1 };
        state.storage.sql.exec('UPDATE approvals SET record = ?, due = ? WHERE id = ?', JSON.stringify(past), Date.now() - 1, target);
      }
    });
    expect(await runDurableObjectAlarm(approvalDesk(env))).toBe(true);
    const status = await approvalDesk(env).status(id, alice);
    expect(status.ok && status.value.state).toBe('expired');
    expect(await refusal(id, await bindingFor(alice, call(), 7))).toMatch(/approved but not used within 15 minutes/);
    expect(await refusal(waiting.value.id, await bindingFor(alice, call(), 7))).toMatch(/nobody decided it before it expired/);
    const late = await approvalDesk(env).decide(waiting.value.id, { username: ADMIN }, 'approve');
    expect(!late.ok && late.error.message).toMatch(/is expired; it can no longer be decided/);
    const rows = await readAudit(env, { user: alice.username, tool: 'approval_expired', limit: 10 });
    expect(rows.map((row) => row.target?.slice(0, 41)).sort()).toEqual([`approval ${id}`, `approval ${waiting.value.id}`].sort());
  });

  it('refuses a pending or rejected approval', async () => {
    const alice = await user();
    const opened = await requestApproval(env, ask(alice));
    if (!opened.ok) throw new Error(opened.error.message);
    const binding = await bindingFor(alice, call(), 7);
    expect(await refusal(opened.value.id, binding)).toMatch(/not been approved yet/);
    expect((await approvalDesk(env).decide(opened.value.id, { username: ADMIN }, 'reject')).ok).toBe(true);
    expect(await refusal(opened.value.id, binding)).toMatch(/admin rejected it/);
  });
});

describe('deciding', () => {
  it('lets no one approve their own call unless the rule asks for their confirmation', async () => {
    const alice = await user();
    const opened = await requestApproval(env, ask(alice));
    if (!opened.ok) throw new Error(opened.error.message);
    const own = await approvalDesk(env).decide(opened.value.id, alice, 'approve');
    expect(!own.ok && own.error.code).toBe('access_denied');
    const confirm = await requestApproval(env, ask(alice, { decision: { effect: 'confirm', rule: { index: 0, note: null } } }));
    if (!confirm.ok) throw new Error(confirm.error.message);
    const confirmed = await approvalDesk(env).decide(confirm.value.id, alice, 'approve');
    expect(confirmed.ok && confirmed.value.state).toBe('approved');
  });

  it('lets a listed group decide, and answers anyone else as not found', async () => {
    const alice = await user();
    const oncall = await user([unique('oncall')]);
    const bystander = await user(['ops']);
    const group = (await teamDirectory(env).access(oncall.username)).subject.groups[0] ?? '';
    const opened = await requestApproval(env, ask(alice, { decision: { effect: 'approve', rule: { index: 1, note: null }, approvers: [`group:${group}`] } }));
    if (!opened.ok) throw new Error(opened.error.message);
    const id = opened.value.id;
    expect(await approvalDesk(env).decide(id, bystander, 'approve')).toEqual({
      ok: false,
      error: { code: 'approval_not_found', message: `No approval ${id} of yours exists.` },
    });
    expect((await approvalDesk(env).status(id, bystander)).ok).toBe(false);
    const listed = await approvalDesk(env).list(oncall);
    expect(listed.ok && listed.value.map((record) => record.id)).toEqual([id]);
    const bystanderList = await approvalDesk(env).list(bystander);
    expect(bystanderList.ok && bystanderList.value.some((record) => record.id === id)).toBe(false);
    const decided = await approvalDesk(env).decide(id, oncall, 'approve');
    expect(decided.ok && decided.value.decidedBy).toBe(oncall.username);
    const twice = await approvalDesk(env).decide(id, { username: ADMIN }, 'reject');
    expect(!twice.ok && twice.error.message).toMatch(/is approved \(decided by/);
  });

  it('checks the approver afresh: a member removed from the group can no longer decide', async () => {
    const alice = await user();
    const oncall = await user(['pager']);
    const opened = await requestApproval(env, ask(alice, { decision: { effect: 'approve', rule: { index: 1, note: null }, approvers: ['group:pager'] } }));
    if (!opened.ok) throw new Error(opened.error.message);
    expect((await teamDirectory(env).updateUser(oncall.username, { groups: [] })).ok).toBe(true);
    const decided = await approvalDesk(env).decide(opened.value.id, oncall, 'approve');
    expect(!decided.ok && decided.error.code).toBe('approval_not_found');
  });

  it('writes audit rows at request, decision and use, with the command and never more', async () => {
    const alice = await user();
    const id = await approved(alice);
    expect((await consumeApproval(env, id, await bindingFor(alice, call(), 7))).ok).toBe(true);
    const rows = (await readAudit(env, { host: 'relay-a/db1', limit: 500 })).filter((row) => row.target?.startsWith(`approval ${id}`));
    expect(rows.map((row) => `${row.user} ${row.tool} ${row.outcome}`).sort()).toEqual(
      [`${alice.username} approval_requested ok`, `admin approval_approved ok`, `${alice.username} approval_used ok`].sort(),
    );
    expect(rows.every((row) => row.target?.endsWith('ssh_exec_command: systemctl restart nginx'))).toBe(true);
  });

  it('keeps one user from flooding the queue', async () => {
    const alice = await user();
    for (let n = 0; n < 20; n += 1) expect((await requestApproval(env, ask(alice))).ok).toBe(true);
    const more = await requestApproval(env, ask(alice));
    expect(!more.ok && more.error.message).toMatch(/already have 20 approvals waiting/);
  });
});

describe('waiting and carrying on', () => {
  it('holds a call until it is approved, then it is granted and used once', async () => {
    const alice = await user();
    const progress: string[] = [];
    const held = holdForApproval(env, ask(alice), { until: Date.now() + 60_000, pollMs: 20, onProgress: (line) => progress.push(line) });
    // The admin approves whatever appears in the queue for alice.
    let id: string | undefined;
    for (let n = 0; n < 200 && id === undefined; n += 1) {
      const queue = await approvalDesk(env).list({ username: ADMIN });
      id = queue.ok ? queue.value.find((record) => record.requester.username === alice.username)?.id : undefined;
      if (id === undefined) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    if (id === undefined) throw new Error('no request appeared');
    expect((await approvalDesk(env).decide(id, { username: ADMIN }, 'approve')).ok).toBe(true);
    expect(await held).toEqual({ kind: 'granted', id });
    expect(progress[0]).toMatch(new RegExp(`^waiting for approval ${id} by a deployment admin`));
    expect(await refusal(id, await bindingFor(alice, call(), 7))).toMatch(/already used/);
  });

  it('answers with the approval id when nobody decides within the wait', async () => {
    const alice = await user();
    const held = await holdForApproval(env, ask(alice), { until: Date.now() + 50, pollMs: 10 });
    if (held.kind !== 'pending') throw new Error(`held: ${held.kind}`);
    const text = held.result.content[0]?.type === 'text' ? held.result.content[0].text : '';
    expect(held.result.isError).toBeUndefined();
    expect(text).toContain(`call ssh_approval_status with approval_id "${held.id}"`);
    const still = await waitForDecision(env, held.id, alice, { until: Date.now() });
    expect(still.ok && still.value.state).toBe('pending');
  });

  it('ssh_approval_status: pending says so, approved runs the stored call once, another user sees no such id', async () => {
    const alice = await user();
    const mallory = await user();
    const opened = await requestApproval(env, ask(alice));
    if (!opened.ok) throw new Error(opened.error.message);
    const id = opened.value.id;
    const ran: string[] = [];
    // The runner the lead wires: consume with the call as it runs now, then run it (here: report it).
    const runner = async (record: ApprovalRecord): Promise<CallToolResult> => {
      const used = await consumeApproval(env, record.id, await bindingFor(alice, call(), 7));
      if (!used.ok) return { content: [{ type: 'text', text: used.error.message }], isError: true };
      ran.push(record.command);
      return { content: [{ type: 'text', text: `ran ${record.command}` }] };
    };
    const connect = async (who: typeof alice): Promise<Client> => {
      const server = new McpServer({ name: 'approvals-test', version: '1' });
      registerApprovalStatusTool(server, env, who, runner);
      const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
      await server.connect(serverSide);
      const client = new Client({ name: 'approvals-test', version: '1' });
      await client.connect(clientSide);
      return client;
    };
    const asAlice = await connect(alice);
    const asMallory = await connect(mallory);
    const status = async (client: Client): Promise<{ text: string; isError: boolean }> => {
      const result = (await client.callTool({ name: 'ssh_approval_status', arguments: { approval_id: id } })) as CallToolResult;
      return { text: result.content.map((item) => (item.type === 'text' ? item.text : '')).join(''), isError: result.isError === true };
    };
    expect(await status(asAlice)).toMatchObject({ isError: false, text: expect.stringContaining(`Approval ${id}: pending.`) });
    expect((await approvalDesk(env).decide(id, { username: ADMIN }, 'approve')).ok).toBe(true);
    expect(await status(asMallory)).toMatchObject({ isError: true, text: expect.stringContaining('[approval_not_found]') });
    expect(await status(asAlice)).toEqual({ isError: false, text: 'ran systemctl restart nginx' });
    expect(await status(asAlice)).toMatchObject({ isError: true, text: expect.stringMatching(/\[approval_refused\].*already used/) });
    expect(ran).toEqual(['systemctl restart nginx']);
    await Promise.all([asAlice.close(), asMallory.close()]);
  });
});
