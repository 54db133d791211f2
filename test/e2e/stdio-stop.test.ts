/**
 * What a timeout or cancel stops on the host: the command's process group, and also what it started
 * outside that group (setsid, nohup) or with a cleared environment while it still writes to the
 * command's output. Real sshd, the built stdio command, processes checked in /proc of the test user.
 */
import { CallToolResultSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execStructuredOutput } from '../../shared/exec-output.ts';
import { remoteProcesses, startSshd, type TestSshd } from '../harness/sshd.ts';
import { textOf } from '../harness/stack.ts';
import { connectStdio, stdioEnv, type StdioSession } from '../harness/stdio.ts';

let sshd: TestSshd;
let session: StdioSession;

beforeAll(async () => {
  sshd = await startSshd();
  session = await connectStdio(stdioEnv(sshd));
});

/** Anything a failed test left running on the host (the sleeps of these tests only: other files share the user), by PID. */
afterEach(() => {
  for (const pid of ['sleep 1001.', 'sleep 1002.', 'sleep 1003.', 'sleep 1004.', 'sleep 1005.'].flatMap((pattern) => remoteProcesses(pattern, sshd.user))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

afterAll(async () => {
  await session?.close();
  await sshd?.stop();
});

async function call(name: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<CallToolResult> {
  return CallToolResultSchema.parse(await session.client.callTool({ name, arguments: args }, CallToolResultSchema, signal ? { signal } : {}));
}

/** Waits (bounded) until every pattern has a process, so a test does not stop a run before it started them. */
async function started(patterns: string[]): Promise<void> {
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    if (patterns.every((pattern) => remoteProcesses(pattern, sshd.user).length > 0)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`not all of ${patterns.join(', ')} started`);
}

const running = (patterns: string[]): string[] => patterns.filter((pattern) => remoteProcesses(pattern, sshd.user).length > 0);

describe('stopping a command on timeout and cancel', () => {
  it('stops setsid and nohup children on timeout, and says the command was stopped', async () => {
    const sleeps = ['sleep 1001.1', 'sleep 1001.2', 'sleep 1001.3'];
    const result = await call('ssh_exec_command', { command: `setsid ${sleeps[0]} & nohup ${sleeps[1]} & ${sleeps[2]}`, timeout: 2 });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('TIMED OUT');
    expect(textOf(result)).not.toContain('MAY STILL RUN');
    // The answer comes after the stop script's final check: nothing is left by then.
    expect(running(sleeps)).toEqual([]);
  });

  it('stops a setsid child that no longer writes to the output, found by the marker in its environment', async () => {
    const sleeps = ['sleep 1005.1', 'sleep 1005.2'];
    const result = await call('ssh_exec_command', {
      command: `setsid ${sleeps[0]} >/dev/null 2>&1 & nohup ${sleeps[1]} >/dev/null 2>&1 & sleep 1005.3`,
      timeout: 2,
    });
    expect(textOf(result)).toContain('TIMED OUT');
    expect(running([...sleeps, 'sleep 1005.3'])).toEqual([]);
  });

  it('stops a child that left the session and cleared its environment while it holds the output', async () => {
    const sleeps = ['sleep 1002.1', 'sleep 1002.2'];
    const result = await call('ssh_exec_command', { command: `setsid env -i ${sleeps[0]} & ${sleeps[1]}`, timeout: 2 });
    expect(textOf(result)).toContain('TIMED OUT');
    expect(running(sleeps)).toEqual([]);
  });

  it('stops a command whose own process ended but whose setsid child keeps the output open', async () => {
    const result = await call('ssh_exec_command', { command: 'setsid sleep 1003.1 & echo started', timeout: 2 });
    expect(textOf(result)).toContain('TIMED OUT');
    expect(textOf(result)).toContain('started');
    expect(running(['sleep 1003.1'])).toEqual([]);
  });

  it('stops setsid and nohup children when the client cancels', async () => {
    const sleeps = ['sleep 1004.1', 'sleep 1004.2', 'sleep 1004.3'];
    const controller = new AbortController();
    const pending = call(
      'ssh_exec_command',
      { command: `setsid ${sleeps[0]} & nohup ${sleeps[1]} & setsid env -i ${sleeps[2]}; wait`, timeout: 60 },
      controller.signal,
    );
    await started(sleeps);
    controller.abort();
    await expect(pending).rejects.toThrow();
    // The cancelled call has no answer to wait for: poll, bounded.
    const until = Date.now() + 10_000;
    while (running(sleeps).length > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(running(sleeps)).toEqual([]);
  });

  it('leaves exit code, stdout and stderr as the command made them, and no watchdog behind', async () => {
    const result = await call('ssh_exec_command', {
      command: 'echo "o:$o:$mre_o"; echo err >&2; printf "%s" "$MRE_RUN" | wc -c >&2; echo "$$" >&2; exit 7',
      response_format: 'json',
    });
    expect(result.structuredContent).toMatchObject({ exit_code: 7, stdout: 'o::\n', timed_out: false });
    const [first, length, shellPid] = execStructuredOutput.parse(result.structuredContent).stderr.split('\n');
    expect([first, length]).toEqual(['err', '16']);
    // The watchdog's command line names the login shell it guards ($$ in the command).
    const watchdogs = (): number[] => remoteProcesses(`mre-watchdog ${shellPid} `, sshd.user);
    const until = Date.now() + 5_000;
    while (watchdogs().length > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(watchdogs()).toEqual([]);
  });
});
