/**
 * ssh_exec_command with `pty: true`: the command gets a pseudo-terminal (a /dev/pts device, TERM=dumb,
 * the asked size), stderr arrives merged into stdout, line ends stay LF, control sequences are escaped
 * in text, and timeout and cancel still stop it. Real sshd; through the Worker stack and the stdio command.
 */
import { CallToolResultSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { remoteProcesses, waitForNoProcesses } from '../harness/sshd.ts';
import { startStack, textOf, type Stack } from '../harness/stack.ts';
import { connectStdio, stdioEnv, type StdioSession } from '../harness/stdio.ts';

let stack: Stack;
let stdio: StdioSession;

/** Unique to this file and run: the commands below carry it as $0, so /proc finds them and nothing else. */
const MARK = `mre-pty-${process.pid}`;
/** The background sleep of the commands waiting for input (its command line does not carry MARK). */
const SLEEP = `sleep 1017.${process.pid}`;

beforeAll(async () => {
  stack = await startStack();
  stdio = await connectStdio(stdioEnv(stack.sshd));
});

/** Whatever a failed test left running on the host, by PID. */
afterEach(() => {
  for (const pid of [MARK, SLEEP].flatMap((pattern) => remoteProcesses(pattern, stack.sshd.user))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

afterAll(async () => {
  await stdio?.close();
  await stack?.stop();
});

async function stdioCall(args: Record<string, unknown>, signal?: AbortSignal): Promise<CallToolResult> {
  return CallToolResultSchema.parse(await stdio.client.callTool({ name: 'ssh_exec_command', arguments: args }, CallToolResultSchema, signal ? { signal } : {}));
}

/** Poll (bounded) until no process of the test user carries `pattern`. */
async function gone(pattern: string, withinMs = 6000): Promise<boolean> {
  return (await waitForNoProcesses(pattern, stack.sshd.user, withinMs)).length === 0;
}

async function appeared(pattern: string, withinMs = 10_000): Promise<void> {
  const until = Date.now() + withinMs;
  while (remoteProcesses(pattern, stack.sshd.user).length === 0) {
    if (Date.now() > until) throw new Error(`${pattern} never started`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A shell waiting for a line on stdin, named `name` in /proc, with a background sleep of the same run
 * in a session of its own (out of reach of the process group: only the run's marker, which the pty
 * wrapper reports, finds it); both ignore SIGHUP, so the terminal's hangup does not stop them: the stop does.
 */
const waitsForInput = (name: string): string => `sh -c 'trap "" HUP; setsid ${SLEEP} & read x; echo got "$x"' ${name}`;

describe('pty: true through the Worker', () => {
  it('runs the command on a terminal: tty names a /dev/pts device, TERM is dumb, the default size is 24x80, lines end in LF', async () => {
    const result = await stack.call('ssh_exec_command', { command: 'tty; echo "TERM=$TERM"; stty size', pty: true });
    expect(result.isError).toBeFalsy();
    expect((result.structuredContent as { stdout?: string }).stdout).toMatch(/^\/dev\/pts\/[0-9]+\nTERM=dumb\n24 80\n$/);
    expect(result.structuredContent).toMatchObject({ exit_code: 0, stderr: '' });
  });

  it('without pty there is no terminal', async () => {
    const result = await stack.call('ssh_exec_command', { command: 'tty' });
    expect(result.structuredContent).toMatchObject({ stdout: 'not a tty\n', exit_code: 1 });
  });

  it('takes the terminal size from pty_rows and pty_cols, and refuses them without pty', async () => {
    const sized = await stack.call('ssh_exec_command', { command: 'stty size', pty: true, pty_rows: 50, pty_cols: 132 });
    expect(sized.structuredContent).toMatchObject({ stdout: '50 132\n', exit_code: 0 });
    const refused = await stack.call('ssh_exec_command', { command: 'stty size', pty_rows: 50 });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toContain('pty_rows and pty_cols apply only with pty: true');
    const tooBig = await stack.call('ssh_exec_command', { command: 'stty size', pty: true, pty_cols: 100_000 });
    expect(tooBig.isError).toBe(true);
    expect(textOf(tooBig)).toContain('pty_cols must be at most 1000');
  });

  it('merges stderr into stdout, as the terminal does', async () => {
    const result = await stack.call('ssh_exec_command', { command: 'echo out; echo err >&2; exit 4', pty: true });
    expect(result.structuredContent).toMatchObject({ stdout: 'out\nerr\n', stderr: '', exit_code: 4 });
  });

  it('escapes control sequences in text and keeps the exact text in structured content', async () => {
    const result = await stack.call('ssh_exec_command', { command: String.raw`printf 'A\033[31mB\033]0;owned\007C\rD\n'`, pty: true });
    const text = textOf(result);
    expect(text).toContain(String.raw`A\x1b[31mB\x1b]0;owned\x07C\rD`);
    expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    expect(result.structuredContent).toMatchObject({ stdout: 'A\u001b[31mB\u001b]0;owned\u0007C\rD\n' });
  });

  it('a command waiting for input on the terminal times out as usual and is stopped, with what it started', async () => {
    const name = `${MARK}-timeout`;
    const result = await stack.call('ssh_exec_command', { command: `echo begun; ${waitsForInput(name)}`, pty: true, timeout: 2 });
    expect(result.isError).toBe(true);
    expect(result.structuredContent).toMatchObject({ timed_out: true, exit_code: null, stdout: 'begun\n' });
    expect(textOf(result)).toContain('TIMED OUT');
    expect(textOf(result)).not.toContain('MAY STILL RUN');
    // The answer comes after the stop's final check (the host's own deadline is seconds later): nothing is left by then.
    expect(remoteProcesses(name, stack.sshd.user)).toEqual([]);
    expect(remoteProcesses(SLEEP, stack.sshd.user)).toEqual([]);
  });

  it('stops the command when the client cancels the call', async () => {
    const name = `${MARK}-cancel`;
    const controller = new AbortController();
    const call = stack.call('ssh_exec_command', { command: waitsForInput(name), pty: true, timeout: 60 }, { signal: controller.signal });
    await appeared(name);
    controller.abort();
    await expect(call).rejects.toThrow();
    // The host's own deadline is a minute away: only the relay's stop ends the sleep, which ignores the hangup.
    expect(await gone(name)).toBe(true);
    expect(await gone(SLEEP)).toBe(true);
  });
});

describe('pty: true in the stdio mode', () => {
  it('runs the command on a terminal', async () => {
    const result = await stdioCall({ command: 'tty; echo "TERM=$TERM"; echo err >&2', pty: true });
    expect((result.structuredContent as { stdout?: string }).stdout).toMatch(/^\/dev\/pts\/[0-9]+\nTERM=dumb\nerr\n$/);
  });

  it('a command waiting for input times out and is stopped', async () => {
    const name = `${MARK}-stdio`;
    const result = await stdioCall({ command: waitsForInput(name), pty: true, timeout: 2 });
    expect(result.structuredContent).toMatchObject({ timed_out: true, exit_code: null });
    expect(textOf(result)).not.toContain('MAY STILL RUN');
    expect(remoteProcesses(name, stack.sshd.user)).toEqual([]);
    expect(remoteProcesses(SLEEP, stack.sshd.user)).toEqual([]);
  });
});
