/**
 * For tests of the relay's ready shells (relay/ssh-pool.ts) against one test sshd: the processes
 * under that sshd (other files' sshd fixtures run in parallel), the ready shells among them that
 * still wait for a run, and one exec through the relay's operations with its stdout.
 */
import { readFileSync } from 'node:fs';
import type { ExecOperation, ExecResultFrame } from '../../shared/protocol.ts';
import type { RelayOperations } from '../../relay/operations.ts';
import { childrenOf, type TestSshd } from './sshd.ts';

/** Every process under the listening sshd: connection monitors, sessions, and what they run. */
export function processesUnder(sshd: TestSshd): number[] {
  const found: number[] = [];
  const queue = [...childrenOf(sshd.pid)];
  for (let index = 0; index < queue.length && index < 1000; index += 1) {
    const pid = queue[index] as number;
    found.push(pid);
    queue.push(...childrenOf(pid));
  }
  return found;
}

/** A process's command line, arguments joined by spaces ('' once it is gone). */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/** The ready shells under `sshd` that wait for a run: started as ready shells, with no child yet (a running one has its run's). */
export function waitingShells(sshd: TestSshd): number[] {
  return processesUnder(sshd).filter((pid) => commandLine(pid).includes('IFS= read -r mre_l') && childrenOf(pid).length === 0);
}

/** One exec on `host` as `caller` (null: none, as in stdio mode), with what it printed on stdout. */
export async function runExec(
  ops: RelayOperations,
  host: string,
  command: string,
  extra: Partial<ExecOperation> = {},
  caller: string | null = 'user-1',
): Promise<ExecResultFrame & { stdout: string }> {
  let stdout = '';
  const timeoutMs = extra.timeoutMs ?? 30_000;
  const outcome = await ops.run(
    { op: 'exec', host, command, timeoutMs, maxChars: 25_000, ...extra },
    (stream, text) => {
      if (stream === 'stdout') stdout += text;
    },
    AbortSignal.timeout(timeoutMs + 10_000),
    undefined,
    caller ?? undefined,
  );
  if (!outcome.ok) throw new Error(outcome.error.message);
  if (outcome.value.op !== 'exec') throw new Error('not an exec result');
  return Object.assign(outcome.value, { stdout });
}
