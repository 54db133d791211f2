/**
 * What the relay adds to one `true` on an open SSH connection, before any Worker or WebSocket: the
 * floor (ssh2 straight), the relay's pool channel (HostPool.exec of plain `true`), the host wrapper
 * through ssh2 straight, and the relay's whole exec operation (RelayOperations.run: pool, wrapper,
 * marker filter, output capture; after the first round, each run goes to the ready shell the pool
 * started after the previous one). Timed interleaved, one of each per round, on one loopback sshd.
 * Then the CPU the whole machine spends per call, for the floor and the relay's exec operation:
 * here the host is this machine, so that includes what a command costs its host. Not a pass/fail test.
 *
 * Run: npm run bench:relay-exec   (CALLS=300 by default; needs root for the test sshd)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newRunId, wrapCommand } from '../relay/host-stop.ts';
import { startSshd } from '../test/harness/sshd.ts';
import { sshdHostConfig, sshdOperations } from '../test/harness/relay.ts';
import { connect, execCommand, sshConfig } from './ssh-floor.ts';
import { machineCpuMs } from './process-cpu.ts';
import { row, summarize, timeInterleaved } from './stats.ts';

const CALLS = Number(process.env.CALLS ?? 300);
/** A host watchdog takes its last look up to two seconds after its run: the CPU count waits that out. */
const SETTLE_MS = 3_000;

const sshd = await startSshd();
const stateDir = mkdtempSync(join(tmpdir(), 'mre-bench-'));
const ops = sshdOperations(sshd, [sshdHostConfig(sshd, 'h')], stateDir);
try {
  const client = await connect(sshConfig(sshd));
  const pool = ops.pool('h');
  if (!pool) throw new Error('no pool');
  const poolExec = async (command: string): Promise<void> => {
    const opened = await pool.exec(command, AbortSignal.timeout(10_000));
    if (!opened.ok) throw new Error(opened.error.message);
    opened.value.channel.resume();
    opened.value.channel.stderr.resume();
    await new Promise((resolve) => opened.value.channel.once('close', resolve));
  };
  const relayRun = async (): Promise<void> => {
    const outcome = await ops.run(
      { op: 'exec', host: 'h', command: 'true', timeoutMs: 30_000, maxChars: 25_000 },
      () => undefined,
      AbortSignal.timeout(10_000),
      undefined,
      'u',
    );
    if (!outcome.ok) throw new Error(outcome.error.message);
  };
  const variants = {
    'raw `true`, ssh2 straight (floor)': () => execCommand(client, 'true'),
    'raw `true` through the relay pool (HostPool.exec)': () => poolExec('true'),
    'wrapped `true`, ssh2 straight': () => execCommand(client, wrapCommand('true', newRunId(), 30_000)),
    'wrapped `true` through the relay pool': () => poolExec(wrapCommand('true', newRunId(), 30_000)),
    'relay exec operation (RelayOperations.run)': relayRun,
  };
  await timeInterleaved(30, variants);
  const samples = await timeInterleaved(CALLS, variants);
  // What each costs the machine, processes started on the host included: one variant at a time,
  // back to back, with a pause before and after so that the work a call leaves behind (a
  // watchdog's last look, a closing channel) falls inside its own variant's count.
  const cpuPerCall = async (action: () => Promise<unknown>): Promise<number> => {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const before = machineCpuMs();
    for (let index = 0; index < CALLS; index += 1) await action();
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    return (machineCpuMs() - before) / CALLS;
  };
  const cpu = { floor: await cpuPerCall(variants['raw `true`, ssh2 straight (floor)']), relay: await cpuPerCall(relayRun) };
  client.end();
  const summaries = Object.entries(samples).map(([label, taken]) => ({ label, summary: summarize(taken) }));
  const floor = summaries[0]?.summary.median ?? Number.NaN;
  const lines = [`relay exec cost: ${CALLS} interleaved calls of each, loopback sshd, Node ${process.version}`, ''];
  for (const { label, summary } of summaries) lines.push(`${row(label, summary)}   +${(summary.median - floor).toFixed(2)} ms over the floor`);
  lines.push(
    '',
    `machine CPU per call (every process, host side included; ${CALLS} calls back to back, counted to ${SETTLE_MS / 1000} s after the last):`,
    `    floor ${cpu.floor.toFixed(2)} ms, relay exec operation ${cpu.relay.toFixed(2)} ms = ${(cpu.relay / cpu.floor).toFixed(2)} × the floor`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  ops.close();
  await sshd.stop();
  rmSync(stateDir, { recursive: true, force: true });
}
