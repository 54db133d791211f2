/**
 * Audit writes after a call's answer go to the TeamDirectory in batches (worker/team/audit-batch.ts):
 * the completions of calls that end within the batch window, and the rows of calls recorded once
 * done, take one directory call; and a reader (readAudit) sends the waiting batch before it reads,
 * so it sees calls that just ended.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { auditQuerySchema, readAudit } from '../../worker/audit/audit-log.ts';
import { countingEnv, doCallsSoFar, withDoCallCount } from '../../worker/do-call-count.ts';
import { completeAudit, recordAuditLater } from '../../worker/team/audit-batch.ts';
import { teamDirectory } from '../../worker/team/team-directory.ts';

const END = { outcome: 'ok' as const, code: null, exitCode: 0, bytes: 3, durationMs: 12 };

/** `count` calls let through by the team's gate, each with its started row. */
async function startedCalls(count: number): Promise<Array<{ auditId: string; target: string }>> {
  const team = teamDirectory(env);
  expect((await team.admitRelay('relay-a', null)).ok).toBe(true);
  await team.noteRelayConnected('relay-a', [{ name: 'web1', target: 'ops@127.0.0.1:22', labels: {}, capabilities: [] }]);
  const calls: Array<{ auditId: string; target: string }> = [];
  for (let index = 0; index < count; index += 1) {
    const target = `echo batch-${index}-${crypto.randomUUID()}`;
    const { auditId } = await team.gate({
      entry: { time: new Date().toISOString(), user: 'admin', client: 'client-1', relay: null, host: 'web1', tool: 'ssh_exec_command', target },
      requestedHost: 'web1',
      needed: 'operator',
      begin: true,
    });
    if (auditId === null) throw new Error('the gate wrote no started row');
    calls.push({ auditId, target });
  }
  return calls;
}

async function outcomes(targets: string[]): Promise<string[]> {
  const rows = await readAudit(env, auditQuerySchema.parse({ tool: 'ssh_exec_command', limit: 10_000 }));
  return targets.map((target) => rows.find((row) => row.target === target)?.outcome ?? 'missing');
}

describe('audit row completions', () => {
  it('complete the rows of calls that end together, and record those written once done, with one directory call', async () => {
    const calls = await startedCalls(3);
    const pinged = `ping-${crypto.randomUUID()}`;
    const row = { time: new Date().toISOString(), user: 'admin', client: 'client-1', relay: 'relay-a', host: null, tool: 'ssh_exec_command', target: pinged };
    const directoryCalls = await withDoCallCount(0, async () => {
      const counting = countingEnv(env);
      await Promise.all([
        ...calls.map(({ auditId }) => completeAudit(counting, { auditId, end: END, tool: 'ssh_exec_command' })),
        recordAuditLater(counting, { ...row, ...END }),
      ]);
      return doCallsSoFar();
    });
    expect(directoryCalls).toBe(1);
    expect(await outcomes([...calls.map((call) => call.target), pinged])).toEqual(['ok', 'ok', 'ok', 'ok']);
  });

  it('reach a reader at once: readAudit sends the waiting batch before it reads', async () => {
    const [call] = await startedCalls(1);
    if (call === undefined) throw new Error('no call');
    const written = completeAudit(env, { auditId: call.auditId, end: END, tool: 'ssh_exec_command' });
    expect(await outcomes([call.target])).toEqual(['ok']);
    await written;
  });
});
