/**
 * Where one call's CPU goes across the processes of the local stack: the bench client, wrangler's
 * Node process, its two workerd processes (the dev proxy in front, and the one that runs the Worker
 * and every Durable Object on one thread), the relay. For /healthz (the bench's platform floor, (f))
 * and for relay_ping ((c)), from /proc, over CALLS sequential calls each, no profiler attached.
 * On a 2-core machine every one of them competes for the same cores, so a process's CPU per call
 * is time some call waits for; comparing the two rows shows what a tool call adds to a request.
 * This is how wrangler's local trace collector showed up (scripts/wrangler-dev-env.ts).
 *
 * Run: node bench/stack-cpu.ts   (CALLS=400; needs root for the test sshd, like the e2e tests)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { connectMcpClient, defaultEra } from '../test/harness/mcp-client.ts';
import { startStack } from '../test/harness/stack.ts';
import { PROJECT_ROOT } from '../test/harness/worker.ts';
import { machineCpuMs, processStat } from './process-cpu.ts';

const CALLS = Number(process.env.CALLS ?? 400);
/** CPU so far (ms) of every process, keyed by pid and a short name from its command line. */
function processCpu(): Map<string, number> {
  const cpu = new Map<string, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = processStat(Number(entry));
      if (!stat) continue;
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
      const name = command
        .slice(0, 3)
        .map((part) => part.replace(/^.*node_modules\//, '').replace(`${PROJECT_ROOT}/`, ''))
        .join(' ');
      cpu.set(`${entry} ${name}`, stat.cpuMs);
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return cpu;
}

const stack = await startStack({});
try {
  const client = await connectMcpClient(stack.worker.mcpUrl, { username: stack.worker.adminUser, password: stack.worker.adminPassword }, { era: defaultEra() });
  const healthz = `${stack.worker.url}/healthz`;
  const kinds: Array<[string, () => Promise<void>]> = [
    [
      '(f) GET /healthz',
      async () => {
        const response = await fetch(healthz);
        await response.arrayBuffer();
        if (!response.ok) throw new Error(`/healthz answered ${response.status}`);
      },
    ],
    [
      `(c) relay_ping, ${defaultEra()} client`,
      async () => {
        const result = await client.client.callTool({ name: 'relay_ping', arguments: {} });
        if (result.isError) throw new Error(`relay_ping failed: ${JSON.stringify(result.content)}`);
      },
    ],
  ];
  for (const [name, call] of kinds) {
    for (let index = 0; index < 30; index += 1) await call();
    const before = processCpu();
    const machineBefore = machineCpuMs();
    const started = performance.now();
    for (let index = 0; index < CALLS; index += 1) await call();
    const wall = performance.now() - started;
    const machine = machineCpuMs() - machineBefore;
    const after = processCpu();
    console.log(`${name}: ${(wall / CALLS).toFixed(2)} ms wall, ${(machine / CALLS).toFixed(2)} ms of machine CPU per call`);
    const used = [...after]
      .map(([key, ms]) => [key, ms - (before.get(key) ?? 0)] as const)
      .filter(([, ms]) => ms > 0)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 6);
    for (const [key, ms] of used) console.log(`  ${(ms / CALLS).toFixed(2).padStart(6)} ms  ${key}`);
  }
  await client.close();
} finally {
  await stack.stop();
}
