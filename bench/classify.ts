/**
 * Command classification time per command over the corpus (test/fixtures/command-classes.tsv), in
 * Node (relay/stdio) and in local workerd (the Worker's classifier, bench/classify-worker.ts under
 * wrangler's local runtime). Target: p99 under 1 ms. Then an allowed call through the whole stack with and
 * without command rules, against the same run's floor.
 *
 * Node: every command is classified REPEAT times after a warm-up; each call is one sample.
 * workerd: deployed Workers do not advance their clocks during synchronous work (a security
 * measure), so the time is taken outside: each command is sent once with repeat=REPEAT; the median time of an empty
 * request (repeat=0) is subtracted and the rest divided by REPEAT: one sample (a mean) per command.
 *
 *   npm run bench:classify
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { unstable_dev } from 'wrangler';
import { classifyCommand } from '../relay/shell/classifier.ts';
import { parseCorpus } from '../test/harness/command-corpus.ts';
import { adminApi } from '../test/harness/admin-api.ts';
import { startStack } from '../test/harness/stack.ts';
import { connect, execTrue, sshConfig } from './ssh-floor.ts';
import { row, summarize, timeSequential } from './stats.ts';

const REPEAT = Number(process.env.CLASSIFY_BENCH_REPEAT ?? 20);
const CALLS = Number(process.env.CALLS ?? 200);
const root = resolve(import.meta.dirname, '..');
const rows = parseCorpus(readFileSync(join(root, 'test/fixtures/command-classes.tsv'), 'utf8'));
const commands = rows.map((entry) => entry.command);

async function node(): Promise<void> {
  const loadStarted = performance.now();
  await classifyCommand('true');
  console.log(`Node ${process.version}: parser load (first call) ${(performance.now() - loadStarted).toFixed(1)} ms`);
  for (const command of commands) await classifyCommand(command);
  const samples: number[] = [];
  let longest = { ms: 0, command: '' };
  for (let round = 0; round < REPEAT; round += 1) {
    for (const command of commands) {
      const started = performance.now();
      await classifyCommand(command);
      const ms = performance.now() - started;
      samples.push(ms);
      if (ms > longest.ms) longest = { ms, command };
    }
  }
  console.log(row(`Node: classify one command (${commands.length} commands x ${REPEAT})`, summarize(samples)));
  const long = `echo ${'a'.repeat(9_990)}`;
  const longSamples: number[] = [];
  for (let round = 0; round < 20; round += 1) {
    const started = performance.now();
    await classifyCommand(long);
    longSamples.push(performance.now() - started);
  }
  console.log(row('Node: a 10,000-character command', summarize(longSamples)));
  console.log(`Node: slowest single call ${longest.ms.toFixed(2)} ms: ${JSON.stringify(longest.command).slice(0, 60)}`);
}

async function workerd(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mre-classify-bench-'));
  const config = join(dir, 'wrangler.toml');
  writeFileSync(
    config,
    [
      `name = "classify-bench"`,
      `main = ${JSON.stringify(join(root, 'bench/classify-worker.ts'))}`,
      `compatibility_date = "2026-11-01"`,
      `compatibility_flags = ["nodejs_compat"]`,
    ].join('\n'),
  );
  const worker = await unstable_dev(join(root, 'bench/classify-worker.ts'), {
    config,
    ip: '127.0.0.1',
    logLevel: 'error',
    experimental: { disableExperimentalWarning: true },
  });
  try {
    const call = async (command: string, repeat: number): Promise<{ ms: number; cls: string; clock: number }> => {
      const started = performance.now();
      const response = await worker.fetch('/', { method: 'POST', body: JSON.stringify({ command, repeat }) });
      const body = (await response.json()) as { class: string; clockAdvancedMs: number };
      return { ms: performance.now() - started, cls: body.class, clock: body.clockAdvancedMs };
    };
    await call('true', 1);
    for (const command of commands) await call(command, 1);
    const empty: number[] = [];
    for (let round = 0; round < 200; round += 1) empty.push((await call('true', 0)).ms);
    const baseline = summarize(empty).median;
    const perCommand: number[] = [];
    let clockMoved = 0;
    let mismatches = 0;
    for (const entry of rows) {
      const result = await call(entry.command, REPEAT);
      perCommand.push(Math.max(0, result.ms - baseline) / REPEAT);
      clockMoved += result.clock;
      if (result.cls !== entry.expected) mismatches += 1;
    }
    console.log(
      `workerd (wrangler local): empty request median ${baseline.toFixed(3)} ms (subtracted); in-Worker clock advanced ${clockMoved} ms in total; corpus mismatches ${mismatches}`,
    );
    console.log(row(`workerd: classify one command (mean of ${REPEAT} per command, ${rows.length} commands)`, summarize(perCommand)));
  } finally {
    await worker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * An allowed call through the whole local stack, in one run against the floor: ssh_exec_command
 * under a policy without command rules, then under the README's example rules (which allow it).
 * The Worker classifies every command either way, so the difference is the rules' own cost; what
 * classification itself costs is the workerd figure above.
 */
async function allowedCall(): Promise<void> {
  const stack = await startStack();
  try {
    const open = await connect(sshConfig(stack.sshd));
    for (let index = 0; index < 20; index += 1) await execTrue(open);
    const floor = summarize(await timeSequential(CALLS, () => execTrue(open)));
    open.end();
    const command = 'journalctl -u nginx --since today | grep -i error | tail -n 50';
    const call = async (): Promise<void> => {
      const result = await stack.mcp.client.callTool({ name: 'ssh_exec_command', arguments: { command } });
      if (result.isError) throw new Error(`ssh_exec_command failed during the benchmark: ${JSON.stringify(result.content)}`);
    };
    for (let index = 0; index < 20; index += 1) await call();
    const plain = summarize(await timeSequential(CALLS, call));
    const saved = await adminApi(stack.worker).put('policy', {
      version: 1,
      grants: [],
      commandRules: [
        { effect: 'allow', roles: ['viewer'], hosts: ['env=staging'], classes: ['read-only'] },
        { effect: 'approve', roles: ['operator'], hosts: ['env=prod'], classes: ['privileged'] },
        { effect: 'deny', hosts: ['*'], programs: ['mkfs*'] },
      ],
    });
    if (saved.status !== 200) throw new Error(`could not set the policy: ${saved.text}`);
    for (let index = 0; index < 20; index += 1) await call();
    const ruled = summarize(await timeSequential(CALLS, call));
    console.log(row('(a) raw ssh2 exec `true` (open connection)', floor));
    console.log(row('ssh_exec_command (a read-only pipeline), no command rules', plain));
    console.log(row('ssh_exec_command (the same), with command rules', ruled));
    console.log(
      `with rules − without: median ${(ruled.median - plain.median).toFixed(2)} ms, p99 ${(ruled.p99 - plain.p99).toFixed(2)} ms (${((ruled.median - plain.median) / floor.median).toFixed(2)} × (a))`,
    );
  } finally {
    await stack.stop();
  }
}

await node();
await workerd();
await allowedCall();
