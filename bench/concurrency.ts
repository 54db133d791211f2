/**
 * Throughput under concurrency: 200 concurrent ssh_exec_command("sleep 0.2") calls from 5 MCP
 * sessions (5 users of one team) on one host, through the whole local stack (client → Worker → session DO → relay hub →
 * relay → sshd), against baselines measured in the same run on the same sshd:
 *   ideal  the pool's capacity: max_connections (4) × 8 channels (sshd's MaxSessions 10, less the 2
 *          the pool keeps for stopping commands) at once, so ceil(200 / 32) rounds of 0.2 s;
 *   stdio  the same 200 calls through one stdio session (same relay code and one pool, no Worker).
 * CPU time of the Worker (workerd) and the relay during the burst shows where a call's cost goes.
 * Target: the Worker path within 2 × the stdio path; before this bench, it took 7–8 s (≈ 30 calls/s).
 *
 * Run: npm run bench:concurrency   (needs root for the test sshd, like the e2e tests)
 */
import { adminApi } from '../test/harness/admin-api.ts';
import { connectMcpClient } from '../test/harness/mcp-client.ts';
import { startStack } from '../test/harness/stack.ts';
import { connectStdio, stdioEnv } from '../test/harness/stdio.ts';
import { treeCpuMs } from './process-cpu.ts';

const SESSIONS = 5;
const CALLS = Number(process.env.CALLS ?? 200);
const SLEEP_S = 0.2;
/** max_connections (4) × the pool's channels per connection (sshd's MaxSessions 10, less 2 kept for stopping commands). */
const POOL_CHANNELS = 4 * 8;

type CallTool = (args: { name: string; arguments: Record<string, unknown> }) => Promise<Record<string, unknown>>;

/** All calls at once, spread over the sessions; every call must succeed, or the figure would flatter. */
async function burst(sessions: CallTool[]): Promise<number> {
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CALLS }, async (_, index) => {
      const call = sessions[index % sessions.length];
      if (!call) throw new Error('no session');
      const result = await call({ name: 'ssh_exec_command', arguments: { command: `sleep ${SLEEP_S}` } });
      if (result.isError) throw new Error(`a call failed during the benchmark: ${JSON.stringify(result.content)}`);
    }),
  );
  return performance.now() - started;
}

const stack = await startStack();
try {
  // Five people of one team, one session each: an operator group on every host.
  const admin = adminApi(stack.worker);
  const clients = [];
  for (let index = 0; index < SESSIONS; index += 1) {
    const added = await admin.post('users', { username: `bench-${index}`, groups: ['ops'] });
    if (added.status !== 201) throw new Error(`could not add a user: ${added.text}`);
    clients.push(await connectMcpClient(stack.worker.mcpUrl, { username: `bench-${index}`, password: String(added.body.password) }));
  }
  const policy = await admin.put('policy', { version: 1, grants: [{ subjects: ['group:ops'], role: 'operator', hosts: ['*'] }] });
  if (policy.status !== 200) throw new Error(`could not set the policy: ${policy.text}`);
  const viaWorker: CallTool[] = clients.map((connected) => (args) => connected.client.callTool(args, undefined, { timeout: 120_000 }));
  // The first burst meets cold SSH connections and fresh sessions, as a team's morning does.
  const coldMs = await burst(viaWorker);
  const cpuBefore = { worker: treeCpuMs(stack.worker.process.pid), relay: treeCpuMs(stack.relay.process.pid) };
  const workerMs = await burst(viaWorker);
  const cpu = { worker: treeCpuMs(stack.worker.process.pid) - cpuBefore.worker, relay: treeCpuMs(stack.relay.process.pid) - cpuBefore.relay };

  // One session: one pool, as the relay has.
  const stdioSessions = [await connectStdio(stdioEnv(stack.sshd))];
  const viaStdio: CallTool[] = stdioSessions.map((session) => (args) => session.client.callTool(args, undefined, { timeout: 120_000 }));
  await burst(viaStdio);
  const stdioMs = await burst(viaStdio);
  await Promise.all(stdioSessions.map((session) => session.close()));
  for (const connected of clients) await connected.close();

  const idealMs = Math.ceil(CALLS / POOL_CHANNELS) * SLEEP_S * 1000;
  const lines = [
    `${CALLS} concurrent ssh_exec_command("sleep ${SLEEP_S}") from ${SESSIONS} sessions on one host, loopback sshd, Node ${process.version}`,
    `  ideal (pool of ${POOL_CHANNELS} channels)   ${idealMs.toFixed(0).padStart(6)} ms`,
    `  stdio mode (no Worker)          ${stdioMs.toFixed(0).padStart(6)} ms   ${(stdioMs / idealMs).toFixed(2)} × ideal`,
    `  through the Worker, first burst ${coldMs.toFixed(0).padStart(6)} ms   ${(coldMs / idealMs).toFixed(2)} × ideal`,
    `  through the Worker              ${workerMs.toFixed(0).padStart(6)} ms   ${(workerMs / idealMs).toFixed(2)} × ideal, ${(workerMs / stdioMs).toFixed(2)} × stdio   [target ≤ 2 × stdio]`,
    `  Worker throughput               ${((CALLS / workerMs) * 1000).toFixed(0).padStart(6)} calls/s`,
    `  CPU per call: Worker ${(cpu.worker / CALLS).toFixed(1)} ms, relay ${(cpu.relay / CALLS).toFixed(1)} ms`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  await stack.stop();
}
