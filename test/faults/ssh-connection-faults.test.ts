/**
 * The SSH side fails under a call: the connection is cut, or goes silent (the host's sshd stops
 * answering while TCP stays up, as when a host freezes or a network path blackholes). The caller
 * is told the truth promptly, and later calls are not stuck behind the dead connection.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { processesUnder, remoteProcesses } from '../harness/sshd.ts';
import { startStack, textOf, type Stack } from '../harness/stack.ts';
import { waitFor } from '../harness/wait.ts';

let stack: Stack;
const stopped: number[] = [];

/** Every process under the listening sshd: the per-connection monitors and their session children. */
const connectionProcesses = (): number[] => processesUnder(stack.sshd);

beforeAll(async () => {
  stack = await startStack();
});

afterEach(() => {
  for (const pid of stopped.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
      process.kill(pid, 'SIGCONT');
    } catch {
      // Already gone.
    }
  }
});

afterAll(async () => {
  await stack?.stop();
});

describe('the SSH connection fails during a call', () => {
  it('reports a cut connection at once as lost with an unknown outcome, and the next call reconnects', async () => {
    const call = stack.call('ssh_exec_command', { command: 'sleep 95', timeout: 60 });
    await waitFor(() => remoteProcesses('sleep 95', stack.sshd.user).length > 0, 10_000, 'the command to start');
    const cutAt = Date.now();
    // The whole connection dies (monitor and session processes): its TCP socket closes.
    for (const pid of connectionProcesses()) process.kill(pid, 'SIGKILL');
    const result = await call;
    expect(Date.now() - cutAt).toBeLessThan(30_000);
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('host_unreachable');
    expect(textOf(result)).toMatch(/lost while the command was running; whether it finished is unknown/);
    const next = await stack.call('ssh_exec_command', { command: 'echo again' });
    expect(next.structuredContent).toMatchObject({ stdout: 'again\n', exit_code: 0 });
  });

  it('does not leave later calls stuck behind a connection that went silent', async () => {
    expect((await stack.call('ssh_exec_command', { command: 'echo warm' })).isError).toBeFalsy();
    // Freeze the connections' sshd processes: TCP stays open, nothing answers.
    for (const pid of connectionProcesses()) {
      process.kill(pid, 'SIGSTOP');
      stopped.push(pid);
    }
    const result = await stack.call('ssh_exec_command', { command: 'echo fresh', timeout: 20 });
    expect(textOf(result)).toContain('fresh');
    expect(result.structuredContent).toMatchObject({ exit_code: 0 });
  });
});
