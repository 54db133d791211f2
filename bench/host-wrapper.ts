/**
 * What the host-side wrapper of ssh_exec_command (relay/host-stop.ts wrapCommand) costs on top of
 * running `true` over an open ssh2 connection, piece by piece, on one loopback sshd. The variants
 * are timed interleaved (one of each, CALLS times) so that a slow patch of the machine hits them all
 * alike:
 *   raw        `true`, as the floor of bench/exec-latency.ts runs it
 *   subshell   `( eval 'true' ) </dev/null`: the command's own subshell and empty stdin
 *   marker     the wrapper without its host watchdog: also the output-pipe inode and the marker line
 *   wrapped    the whole wrapper: also the watchdog (an `sh` that gives the host its own deadline)
 * Not a pass/fail test: it says where the time between the floor and a relay exec goes.
 *
 * Run: node bench/host-wrapper.ts   (CALLS=300 by default; needs root for the test sshd)
 */
import { newRunId, wrapCommand } from '../relay/host-stop.ts';
import { startSshd } from '../test/harness/sshd.ts';
import { connect, execCommand, sshConfig } from './ssh-floor.ts';
import { row, summarize } from './stats.ts';

const CALLS = Number(process.env.CALLS ?? 300);

/** The wrapper with its watchdog start cut out: from the watchdog's `sh -c` to the marker's export. */
function withoutWatchdog(wrapped: string): string {
  const start = wrapped.indexOf('sh -c ');
  const end = wrapped.indexOf('MRE_RUN=', wrapped.indexOf('mre-watchdog'));
  if (start < 0 || end < 0) throw new Error('the wrapper no longer has the shape this benchmark cuts: update withoutWatchdog');
  return wrapped.slice(0, start) + wrapped.slice(end);
}

const sshd = await startSshd();
try {
  const client = await connect(sshConfig(sshd));
  const variants: Array<{ label: string; command: () => string }> = [
    { label: 'raw `true`', command: () => 'true' },
    { label: "subshell `( eval 'true' ) </dev/null`", command: () => "( eval 'true' ) </dev/null" },
    { label: 'wrapper without its watchdog (marker, pipe inode)', command: () => withoutWatchdog(wrapCommand('true', newRunId(), 30_000)) },
    { label: 'whole wrapper (with the host watchdog)', command: () => wrapCommand('true', newRunId(), 30_000) },
  ];
  for (let index = 0; index < 30; index += 1) for (const variant of variants) await execCommand(client, variant.command());
  const samples = variants.map(() => [] as number[]);
  for (let index = 0; index < CALLS; index += 1) {
    for (const [position, variant] of variants.entries()) {
      const command = variant.command();
      const started = performance.now();
      await execCommand(client, command);
      samples[position]?.push(performance.now() - started);
    }
  }
  client.end();
  const summaries = samples.map(summarize);
  const floor = summaries[0]?.median ?? Number.NaN;
  const lines = [`host wrapper cost: ${CALLS} interleaved calls of each, loopback sshd, Node ${process.version}`, ''];
  for (const [position, variant] of variants.entries()) {
    const summary = summaries[position];
    if (summary) lines.push(`${row(variant.label, summary)}   +${(summary.median - floor).toFixed(2)} ms over raw`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  await sshd.stop();
}
