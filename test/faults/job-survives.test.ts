/**
 * Issue 14's first rule, on the real parts: a background job keeps running, and keeps its output,
 * while the MCP client goes away, the relay is killed with SIGKILL and started again, and the
 * Worker is killed and started again on the same state (a redeploy). A new client of the same user
 * then reads its state and every one of its 600 lines, byte-exact, and the audit log shows its end
 * exactly once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi } from '../harness/admin-api.ts';
import { connectMcpClient, type ConnectedClient } from '../harness/mcp-client.ts';
import { startRelay, type TestRelay } from '../harness/relay.ts';
import { remoteProcesses } from '../harness/sshd.ts';
import { startStack, type Stack } from '../harness/stack.ts';
import { sleep } from '../harness/wait.ts';
import { localStateRoot, startWorker, type TestWorker } from '../harness/worker.ts';

const JOB = 'for i in $(seq 1 600); do echo line $i; sleep 0.1; done';
const EXPECTED = Array.from({ length: 600 }, (_, index) => `line ${index + 1}\n`).join('');

let stack: Stack;
let worker: TestWorker | undefined;
let relay: TestRelay | undefined;
let client: ConnectedClient | undefined;
const stateDir = mkdtempSync(join(localStateRoot(), 'mre-job-faults-'));

beforeAll(async () => {
  stack = await startStack({ worker: { stateDir } });
});

afterAll(async () => {
  await client?.close().catch(() => undefined);
  await relay?.stop();
  await worker?.stop();
  await stack?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

function structured(result: CallToolResult): Record<string, unknown> {
  if (result.isError) throw new Error(result.content.map((item) => (item.type === 'text' ? item.text : '')).join('\n'));
  return (result.structuredContent ?? {}) as Record<string, unknown>;
}

async function call(on: ConnectedClient, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await on.client.callTool({ name, arguments: args }, undefined, { timeout: 60_000 })) as CallToolResult;
}

describe('a background job', () => {
  it('outlives the client, a killed relay and a restarted Worker; a new client reads all of it, and it ends once', async () => {
    const started = structured((await stack.call('ssh_start_job', { command: JOB, timeout: 600 })) as CallToolResult);
    const jobId = String(started.job_id);
    expect(started.state).toBe('running');

    // The client goes away, then the relay is killed without a chance to clean up.
    await stack.mcp.close();
    await sleep(1_000);
    stack.relay.process.signal('SIGKILL');
    await stack.relay.process.exited;
    expect(remoteProcesses('seq 1 600', stack.sshd.user).length + remoteProcesses('sleep 0.1', stack.sshd.user).length).toBeGreaterThan(0);

    // The Worker is killed and started again on its state, as a redeploy would; a new relay connects to it.
    stack.worker.process.signal('SIGKILL');
    await stack.worker.process.exited;
    worker = await startWorker({ stateDir });
    relay = await startRelay(worker, stack.sshd);
    client = await connectMcpClient(worker.mcpUrl, { username: worker.adminUser, password: worker.adminPassword });

    // Bounded: the job takes about a minute.
    let status: Record<string, unknown> = {};
    for (const until = performance.now() + 150_000; performance.now() < until; await sleep(2_000)) {
      status = structured(await call(client, 'ssh_job_status', { job_id: jobId }));
      if (status.state !== 'running') break;
    }
    expect(status).toMatchObject({ job_id: jobId, state: 'exited', exit_code: 0, stdout_bytes: Buffer.byteLength(EXPECTED) });

    let output = '';
    let offset = 0;
    for (let page = 0; page < 50; page += 1) {
      const read = structured(await call(client, 'ssh_job_output', { job_id: jobId, offset, limit: 1000 }));
      expect(read.offset).toBe(offset);
      output += String(read.data);
      offset = Number(read.next_offset);
      if (read.complete === true) break;
    }
    expect(output).toBe(EXPECTED);

    // Ended once: one job_end row, whoever noticed the end (the book's watch or the status calls).
    const audit = await adminApi(worker).get('audit?tool=job_end');
    const ends = (audit.body.entries as Array<{ target: string }>).filter((row) => row.target.startsWith(`job ${jobId}:`));
    expect(ends).toHaveLength(1);
  });
});
