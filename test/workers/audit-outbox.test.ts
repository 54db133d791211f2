/**
 * The audit outbox (worker/team/audit-outbox.ts): the TeamDirectory's gate call writes a call's
 * `started` row in its own storage, in the call that lets it through (so before anything can be
 * sent), and delivers it to the AuditLog; a completed row is never overwritten by a late started;
 * a delivery that fails is retried, losing and duplicating nothing.
 */
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { auditLog, auditQuerySchema, type AuditEntry } from '../../worker/audit/audit-log.ts';
import type { TeamDirectory } from '../../worker/team/team-directory.ts';

const HOSTS = [{ name: 'web1', target: 'ops@10.0.0.1:22', labels: {}, capabilities: [] }];

/** A TeamDirectory of its own, with one relay serving web1; its outbox drains into the shared AuditLog. */
async function freshTeam(): Promise<DurableObjectStub<TeamDirectory>> {
  const team = env.TEAM_DIRECTORY.get(env.TEAM_DIRECTORY.idFromName(`outbox-${crypto.randomUUID()}`));
  expect((await team.admitRelay('relay-a', null)).ok).toBe(true);
  await team.noteRelayConnected('relay-a', HOSTS);
  return team;
}

function gateRequest(target: string) {
  return {
    entry: { time: new Date().toISOString(), user: 'admin', client: 'client-1', relay: null, host: 'web1', tool: 'ssh_exec_command', target },
    requestedHost: 'web1',
    needed: 'operator' as const,
    begin: true,
  };
}

interface OutboxRow {
  id: string;
  state: number;
  sent: number;
  outcome: string;
}

async function outbox(team: DurableObjectStub<TeamDirectory>): Promise<OutboxRow[]> {
  return runInDurableObject(team, (_instance, state) =>
    state.storage.sql
      .exec<Record<string, string | number>>('SELECT id, state, sent, outcome FROM audit_outbox')
      .toArray()
      .map((row) => ({ id: String(row.id), state: Number(row.state), sent: Number(row.sent), outcome: String(row.outcome) })),
  );
}

async function logged(target: string): Promise<AuditEntry[]> {
  return auditLog(env)
    .query(auditQuerySchema.parse({ tool: 'ssh_exec_command', limit: 10_000 }))
    .then((rows) => rows.filter((row) => row.target === target));
}

const END = { outcome: 'ok' as const, code: null, exitCode: 0, bytes: 3, durationMs: 12 };

describe('the audit outbox', () => {
  it('holds the started row once the gate lets a call through, and the AuditLog has it after a flush', async () => {
    const team = await freshTeam();
    const target = `echo outbox-${crypto.randomUUID()}`;
    const answer = await team.gate(gateRequest(target));
    expect(answer.outcome.ok).toBe(true);
    expect(answer.auditId).toEqual(expect.any(String));
    // The gate's answer is what the Worker sends on: the row is already in the outbox when it arrives.
    const rows = await outbox(team);
    expect(rows.filter((row) => row.id === answer.auditId)).toEqual([expect.objectContaining({ state: 1, outcome: 'started' })]);
    expect(await team.flushAudit()).toBe(true);
    expect(await logged(target)).toEqual([expect.objectContaining({ outcome: 'started', relay: 'relay-a', host: 'web1', user: 'admin', client: 'client-1' })]);
  });

  it('records a refused call complete in the same gate call, and writes no started row', async () => {
    const team = await freshTeam();
    const target = `echo refused-${crypto.randomUUID()}`;
    const answer = await team.gate({ ...gateRequest(target), requestedHost: 'nowhere', entry: { ...gateRequest(target).entry, host: 'nowhere' } });
    expect(answer.outcome.ok).toBe(false);
    expect(answer.auditId).toBeNull();
    expect(await team.flushAudit()).toBe(true);
    expect(await logged(target)).toEqual([expect.objectContaining({ outcome: 'error', code: 'host_not_configured', host: 'nowhere' })]);
    expect(await outbox(team)).toEqual([]);
  });

  it('completes the row once, and a late started delivery never overwrites the completion', async () => {
    const team = await freshTeam();
    const target = `echo late-${crypto.randomUUID()}`;
    const { auditId } = await team.gate(gateRequest(target));
    if (auditId === null) throw new Error('no audit id');
    const startedRow = (await logged(target))[0] ?? (expect(await team.flushAudit()).toBe(true), (await logged(target))[0]);
    expect(startedRow).toMatchObject({ outcome: 'started' });
    await team.writeAuditBatch({ completions: [{ auditId, end: END }], rows: [] });
    await team.writeAuditBatch({ completions: [{ auditId, end: { ...END, outcome: 'error', code: 'relay_disconnected' } }], rows: [] });
    expect(await team.flushAudit()).toBe(true);
    expect(await logged(target)).toEqual([expect.objectContaining({ outcome: 'ok', exitCode: 0, bytes: 3 })]);
    // Delivered and complete: it has left the outbox.
    expect(await outbox(team)).toEqual([]);
    // A started delivery of the same row arriving late (a retry) changes nothing.
    if (startedRow === undefined) throw new Error('no started row');
    await auditLog(env).deliver([{ ...startedRow, outboxId: auditId }]);
    expect(await logged(target)).toEqual([expect.objectContaining({ outcome: 'ok', exitCode: 0 })]);
  });

  it('retries a delivery that fails, and loses or duplicates nothing', async () => {
    const team = await freshTeam();
    const target = `echo retry-${crypto.randomUUID()}`;
    await runInDurableObject(auditLog(env), (instance) => {
      instance.failingDeliveries = 3;
    });
    const { auditId } = await team.gate(gateRequest(target));
    if (auditId === null) throw new Error('no audit id');
    await team.writeAuditBatch({ completions: [{ auditId, end: END }], rows: [] });
    // A reader's flush fails while the AuditLog does; the row stays in the outbox.
    expect(await team.flushAudit()).toBe(false);
    expect(await outbox(team)).toEqual([expect.objectContaining({ id: auditId, state: 2, sent: 0 })]);
    // The alarm retries (each failure schedules the next attempt) until a delivery works.
    for (let attempt = 0; attempt < 10; attempt += 1) {
      const pending = await outbox(team);
      if (pending.length === 0) break;
      const scheduled = await runInDurableObject(team, (_instance, state) => state.storage.getAlarm());
      expect(scheduled).not.toBeNull();
      await runDurableObjectAlarm(team);
    }
    expect(await runInDurableObject(auditLog(env), (instance) => instance.failingDeliveries)).toBe(0);
    expect(await outbox(team)).toEqual([]);
    expect(await logged(target)).toEqual([expect.objectContaining({ outcome: 'ok', exitCode: 0 })]);
  });
  it('schedules a delivery for every row written, also after an earlier delivery has run', async () => {
    const team = await freshTeam();
    const alarm = (): Promise<number | null> => runInDurableObject(team, (_instance, state) => state.storage.getAlarm());
    for (let round = 0; round < 3; round += 1) {
      const target = `echo schedule-${round}-${crypto.randomUUID()}`;
      const { auditId } = await team.gate(gateRequest(target));
      if (auditId === null) throw new Error('no audit id');
      await team.writeAuditBatch({ completions: [{ auditId, end: END }], rows: [] });
      expect(await alarm()).not.toBeNull();
      await runDurableObjectAlarm(team);
      expect(await outbox(team)).toEqual([]);
      expect(await logged(target)).toEqual([expect.objectContaining({ outcome: 'ok' })]);
    }
  });
});
