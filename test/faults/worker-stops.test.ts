/**
 * The Worker (wrangler dev's workerd, locally) dies while a call is running: the client is told at
 * once (an answer or a closed connection, never a wait for its own timeout), the command does not
 * run on orphaned, and the audit log, read after a restart on the same state, shows the call as
 * started with its outcome unknown.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi } from '../harness/admin-api.ts';
import { remoteProcesses, waitForNoProcesses } from '../harness/sshd.ts';
import { startStack, type Stack } from '../harness/stack.ts';
import { localStateRoot, startWorker, type TestWorker } from '../harness/worker.ts';
import { waitFor } from '../harness/wait.ts';

/** The client's own patience: the call must end long before this. */
const CLIENT_TIMEOUT_MS = 120_000;

let stack: Stack;
let restarted: TestWorker | undefined;
const stateDir = mkdtempSync(join(localStateRoot(), 'mre-faults-state-'));

beforeAll(async () => {
  stack = await startStack({ worker: { stateDir } });
});

afterAll(async () => {
  await restarted?.stop();
  await stack?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('the Worker stops during a call', () => {
  it("closes the call's connection at once, stops the command, and leaves the call audited as started", async () => {
    const marker = `worker-dies-${process.pid}`;
    const command = `sleep 97; echo ${marker}`;
    const transportErrors: Array<{ at: number; message: string }> = [];
    stack.mcp.raw.client.onerror = (error: Error) => transportErrors.push({ at: Date.now(), message: error.message });
    const giveUp = new AbortController();
    const call = stack
      .call('ssh_exec_command', { command, timeout: 90 }, { timeoutMs: CLIENT_TIMEOUT_MS, signal: giveUp.signal })
      .catch((error: unknown) => error);
    await waitFor(() => remoteProcesses('sleep 97', stack.sshd.user).length > 0, 10_000, 'the command to start');

    // Written before the command was sent: visible while it runs.
    const during = await adminApi(stack.worker).get('audit?tool=ssh_exec_command&outcome=started');
    expect(during.body.entries).toEqual([expect.objectContaining({ target: command, outcome: 'started', user: 'admin' })]);

    const killedAt = Date.now();
    stack.worker.process.signal('SIGKILL');
    await stack.worker.process.exited;
    // The call's stream is closed at once, not held open until the client's own timeout. (The SDK v1
    // client then retries the stream and, finding nobody, keeps the request pending until its
    // timeout: that wait is the client's, so the test stops waiting for it here.)
    await waitFor(
      () => transportErrors.some((error) => /SSE stream disconnected|fetch failed|ECONNREFUSED|terminated/i.test(error.message)),
      CLIENT_TIMEOUT_MS / 4,
      'the client to see its connection closed',
    );
    const closedAfterMs = (transportErrors[0]?.at ?? Infinity) - killedAt;
    expect(closedAfterMs).toBeLessThan(CLIENT_TIMEOUT_MS / 4);
    giveUp.abort();
    await call;

    // Nobody can learn this command's outcome any more: the relay stops it rather than leave it running.
    expect(await waitForNoProcesses('sleep 97', stack.sshd.user, 15_000), 'the command outlived the Worker').toEqual([]);

    restarted = await startWorker({ stateDir });
    const after = await adminApi(restarted).get('audit?tool=ssh_exec_command');
    expect(after.body.entries).toEqual([expect.objectContaining({ target: command, outcome: 'started', code: null, exitCode: null })]);
  });
});
