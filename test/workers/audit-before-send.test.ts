/**
 * Issue 12's rule, through the real Worker and a stand-in relay: the `started` row of a tool call is
 * in the TeamDirectory's outbox (and in the audit log as soon as a reader asks) when the request
 * reaches the relay, and is completed with the outcome; a call whose row cannot be written is
 * refused and nothing reaches the relay.
 */
import { env, runInDurableObject } from 'cloudflare:test';
import { afterEach, describe, expect, it } from 'vitest';
import { auditQuerySchema, readAudit, type AuditEntry } from '../../worker/audit/audit-log.ts';
import { createOutbox } from '../../worker/team/audit-outbox.ts';
import { teamDirectory } from '../../worker/team/team-directory.ts';
import { accessToken, mcpPost, openMcpSession } from './oauth-flow.ts';
import { connectFakeRelay, type FakeRelay } from './relay-socket.ts';

let relay: FakeRelay | undefined;

afterEach(async () => {
  relay?.socket.close(1000, 'test done');
  relay = undefined;
  // Whatever a test did to the outbox, the next one finds it whole.
  await runInDurableObject(teamDirectory(env), (_instance, state) => createOutbox(state.storage.sql));
});

async function rowsFor(command: string): Promise<AuditEntry[]> {
  return (await readAudit(env, auditQuerySchema.parse({ tool: 'ssh_exec_command', limit: 10_000 }))).filter((row) => row.target === command);
}

async function outboxStates(command: string): Promise<string[]> {
  return runInDurableObject(teamDirectory(env), (_instance, state) =>
    state.storage.sql
      .exec<{ outcome: string }>('SELECT outcome FROM audit_outbox WHERE target = ?', command)
      .toArray()
      .map((row) => row.outcome),
  );
}

function callExec(token: string, sessionId: string, command: string): Promise<Response> {
  return mcpPost(token, { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'ssh_exec_command', arguments: { command, host: 'web1' } } }, sessionId);
}

describe('the audit row of a tool call', () => {
  it('exists as started when the request reaches the relay, and is completed with the outcome', async () => {
    relay = await connectFakeRelay({ hosts: ['web1'] });
    const token = await accessToken();
    const sessionId = await openMcpSession(token);
    const command = `echo before-send-${crypto.randomUUID()}`;
    const answer = callExec(token, sessionId, command);
    const request = await relay.next((frame) => frame.type === 'request');
    // The relay has the request and has not answered: the row is already written.
    expect(await outboxStates(command)).toEqual(['started']);
    expect(await rowsFor(command)).toEqual([expect.objectContaining({ outcome: 'started', host: 'web1', user: 'admin' })]);
    if (request.type !== 'request') throw new Error('not a request');
    relay.send({ type: 'output', id: request.id, stream: 'stdout', data: 'hi\n' });
    relay.send({
      type: 'result',
      id: request.id,
      result: {
        op: 'exec',
        exitCode: 0,
        signal: null,
        timedOut: false,
        cancelled: false,
        stopConfirmed: false,
        stdoutBytes: 3,
        stderrBytes: 0,
        stdoutTruncated: false,
        stderrTruncated: false,
        durationMs: 1,
      },
    });
    const response = await answer;
    expect(await response.text()).toContain('hi');
    // Completed under waitUntil, after the answer: wait for it, bounded.
    for (let attempt = 0; attempt < 50; attempt += 1) {
      const rows = await rowsFor(command);
      if (rows[0]?.outcome === 'ok') break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await rowsFor(command)).toEqual([expect.objectContaining({ outcome: 'ok', exitCode: 0, bytes: 3 })]);
  });

  it('is refused, with nothing sent to the relay, when its row cannot be written', async () => {
    relay = await connectFakeRelay({ hosts: ['web1'] });
    const token = await accessToken();
    const sessionId = await openMcpSession(token);
    await runInDurableObject(teamDirectory(env), (_instance, state) => {
      state.storage.sql.exec('DROP TABLE audit_outbox');
    });
    const command = `echo unrecorded-${crypto.randomUUID()}`;
    const answer = callExec(token, sessionId, command);
    // Whichever comes first: the refusal, or the request at the relay (the rule broken).
    const first = await Promise.race([
      answer.then(() => 'answered'),
      relay
        .next((frame) => frame.type === 'request', 10_000)
        .then(
          () => 'sent to the relay',
          () => 'nothing sent',
        ),
    ]);
    expect(first).toBe('answered');
    expect(await (await answer).text()).toContain('audit log could not be written');
    expect(relay.received.filter((frame) => frame.type === 'request')).toEqual([]);
  });
});
