/**
 * Background jobs: what a job costs against the same run's floors, through the full local stack
 * (Worker, JobBook, relay hub, relay, loopback sshd):
 *   (a) raw ssh2 exec of `true` on an open connection (the floor)
 *   (c) a no-op tool call (relay_ping)
 *   (d) ssh_exec_command("true")
 *   (s) ssh_start_job("true"): call to id returned
 *   (t) ssh_job_status of a running job (asks the host) and of an ended one (answered from the record)
 *   (o) ssh_job_output of a 4 KiB page
 * Targets: (s) ≤ (d); (t) of an ended job ≤ (c). Then 100 jobs started at once on one host (by four users): wall
 * time to all ids, and the relay's peak RSS before and after.
 *
 * Run: npm run bench:jobs   (CALLS=100 by default; needs root for the test sshd, like the e2e tests)
 */
import { connect, execTrue, peakRssMb, sshConfig } from './ssh-floor.ts';
import { adminApi } from '../test/harness/admin-api.ts';
import { connectMcpClient, type ConnectedClient } from '../test/harness/mcp-client.ts';
import { startStack } from '../test/harness/stack.ts';
import { row, summarize, timeSequential } from './stats.ts';

const CALLS = Number(process.env.CALLS ?? 100);

const stack = await startStack({ workerVars: { JOBS_PER_USER: '1000' }, relay: (sshd) => ({ configFile: relayConfig(sshd) }) });

function relayConfig(sshd: { port: number; user: string; privateKeyPath: string; knownHostsPath: string }): unknown {
  return {
    relay_id: 'bench-relay',
    known_hosts: [sshd.knownHostsPath],
    hosts: [{ name: 'bench', address: '127.0.0.1', port: sshd.port, user: sshd.user, key_path: sshd.privateKeyPath, max_jobs: 1000 }],
  };
}

try {
  const open = await connect(sshConfig(stack.sshd));
  for (let index = 0; index < 20; index += 1) await execTrue(open);
  const floor = summarize(await timeSequential(CALLS, () => execTrue(open)));
  open.end();

  // Timing an error path would flatter the figures: every call must succeed.
  const call = async (name: string, args: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const result = await stack.mcp.client.callTool({ name, arguments: args }, undefined, { timeout: 120_000 });
    if (result.isError) throw new Error(`${name} failed during the benchmark: ${JSON.stringify(result.content)}`);
    return (result.structuredContent ?? {}) as Record<string, unknown>;
  };
  for (let index = 0; index < 10; index += 1) {
    await call('relay_ping', {});
    await call('ssh_exec_command', { command: 'true' });
  }
  const noop = summarize(await timeSequential(CALLS, () => call('relay_ping', {})));
  const exec = summarize(await timeSequential(CALLS, () => call('ssh_exec_command', { command: 'true' })));

  const started: string[] = [];
  const start = summarize(
    await timeSequential(CALLS, async () => {
      started.push(String((await call('ssh_start_job', { command: 'true' })).job_id));
    }),
  );
  const running = String((await call('ssh_start_job', { command: 'head -c 4096 /dev/zero | tr "\\0" x; sleep 600', timeout: 900 })).job_id);
  const statusRunning = summarize(await timeSequential(CALLS, () => call('ssh_job_status', { job_id: running })));
  const ended = started[0] ?? '';
  // Make sure its end is recorded, so later looks are answered from the record.
  for (let attempt = 0; attempt < 50 && (await call('ssh_job_status', { job_id: ended })).state === 'running'; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const statusEnded = summarize(await timeSequential(CALLS, () => call('ssh_job_status', { job_id: ended })));
  const page = summarize(await timeSequential(CALLS, () => call('ssh_job_output', { job_id: running, limit: 4096 })));
  await call('ssh_cancel_job', { job_id: running });

  // 100 jobs at once from four people (one person's share of a relay's in-flight requests is 64).
  const admin = adminApi(stack.worker);
  const people: ConnectedClient[] = [];
  for (let index = 0; index < 4; index += 1) {
    const added = await admin.post('users', { username: `bench-${index}`, groups: ['ops'] });
    if (added.status !== 201) throw new Error(`could not add a user: ${added.text}`);
    people.push(await connectMcpClient(stack.worker.mcpUrl, { username: `bench-${index}`, password: String(added.body.password) }));
  }
  const policy = await admin.put('policy', { version: 1, grants: [{ subjects: ['group:ops'], role: 'operator', hosts: ['*'] }] });
  if (policy.status !== 200) throw new Error(`could not set the policy: ${policy.text}`);
  const callAs = async (person: ConnectedClient, name: string, args: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const result = await person.client.callTool({ name, arguments: args }, undefined, { timeout: 120_000 });
    if (result.isError) throw new Error(`${name} failed during the benchmark: ${JSON.stringify(result.content)}`);
    return (result.structuredContent ?? {}) as Record<string, unknown>;
  };
  const rssBefore = peakRssMb(stack.relay.process.pid);
  const burstStarted = performance.now();
  const burst = await Promise.all(
    Array.from({ length: 100 }, async (_, index) => {
      const person = people[index % people.length] as ConnectedClient;
      return { person, job: await callAs(person, 'ssh_start_job', { command: 'sleep 30', timeout: 120 }) };
    }),
  );
  const burstMs = performance.now() - burstStarted;
  const rssAfter = peakRssMb(stack.relay.process.pid);
  for (const { person, job } of burst) await callAs(person, 'ssh_cancel_job', { job_id: String(job.job_id) });
  for (const person of people) await person.close();

  const a = floor.median;
  console.log(row('(a) raw ssh2 exec `true` (open connection)', floor));
  console.log(row('(c) relay_ping through the stack', noop));
  console.log(row('(d) ssh_exec_command("true")', exec));
  console.log(row('(s) ssh_start_job("true"), to the id', start));
  console.log(row('(t) ssh_job_status, running job (asks the host)', statusRunning));
  console.log(row('(t) ssh_job_status, ended job (from the record)', statusEnded));
  console.log(row('(o) ssh_job_output, 4 KiB page', page));
  console.log(`(s) / (d) = ${(start.median / exec.median).toFixed(2)}   target ≤ 1`);
  console.log(`(t ended) / (c) = ${(statusEnded.median / noop.median).toFixed(2)}   target ≤ 1`);
  console.log(`(t running) − (c) = ${((statusRunning.median - noop.median) / a).toFixed(2)} × (a)`);
  console.log(`100 jobs started at once: ${burstMs.toFixed(0)} ms to all ids; relay peak RSS ${rssBefore.toFixed(1)} → ${rssAfter.toFixed(1)} MB`);
} finally {
  await stack.stop();
}
