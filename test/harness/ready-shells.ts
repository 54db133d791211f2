/**
 * For tests of the relay's ready shells (relay/ssh-pool.ts) against one test sshd: the ready shells
 * under that sshd that still wait for a run (other files' sshd fixtures run in parallel), and one
 * exec through the relay's operations with its stdout.
 */
import type { ExecOperation, ExecResultFrame } from '../../shared/protocol.ts';
import type { RelayOperations } from '../../relay/operations.ts';
import { childrenOf, commandLine, processesUnder, processIds, type TestSshd } from './sshd.ts';

/**
 * The ready shells under `sshd` that wait for a run: started as ready shells, with no child yet (a
 * running one has its run's), and not a fork of one (the `$()` that starts a shell's watchdog has
 * its command line and, for a moment, no child either, while the shell itself has it as a child).
 */
export function waitingShells(sshd: TestSshd): number[] {
  const isReadyShell = (pid: number): boolean => commandLine(pid).includes(READY_SHELL_TEXT);
  return processesUnder(sshd).filter((pid) => {
    const parent = processIds(pid)?.ppid;
    return isReadyShell(pid) && childrenOf(pid).length === 0 && (parent === undefined || !isReadyShell(parent));
  });
}

/** Text of every ready shell's command line (host-stop.ts readyShellCommand). */
const READY_SHELL_TEXT = 'IFS= read -r mre_l';

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
