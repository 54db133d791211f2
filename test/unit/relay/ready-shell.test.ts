/**
 * A ready shell (host-stop.ts readyShellCommand) under dash and bash, as a login shell started
 * ahead of its run: it answers the ping, then runs exactly the command it is sent, as wrapCommand
 * would; a run cut short or malformed runs nothing. And the relay's side of the ping
 * (ready-shell-ping.ts) against a channel that answers, prints something else, closes or is silent.
 */
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientChannel } from 'ssh2';
import { afterAll, describe, expect, it } from 'vitest';
import { MARKER, MARKER_END, newRunId, parseMarker, READY_ACK, READY_PING, readyShellCommand, readyShellInput, wrapCommand } from '../../../relay/host-stop.ts';
import { pingReadyShell } from '../../../relay/ready-shell-ping.ts';

const scratch = mkdtempSync(join(tmpdir(), 'mre-ready-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Start `script` under `shell` as sshd would (its own session), write `input` in the given pieces, read everything. */
function runWithInput(shell: string, script: string, pieces: string[], endInput = true): Promise<Ran & { answeredBeforeRun: boolean }> {
  return new Promise((resolve) => {
    const child = spawn('setsid', [shell, '-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let answeredBeforeRun = false;
    const [first, ...rest] = pieces;
    child.stdout.on('data', (chunk: Buffer) => {
      const before = stdout;
      stdout += chunk.toString('latin1');
      // The ack comes alone, before anything of the run is written.
      if (before === '' && stdout === READY_ACK) {
        answeredBeforeRun = true;
        for (const piece of rest) child.stdin.write(piece);
        if (endInput) child.stdin.end();
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('latin1')));
    child.on('close', (code) => resolve({ code, stdout, stderr, answeredBeforeRun }));
    child.stdin.write(first ?? '');
    if (rest.length === 0 && endInput) child.stdin.end();
  });
}

/** The run's own output: what follows the ack, with the wrapper's marker taken out. */
function runOutput(stdout: string): { text: string; pgid: number | null } {
  const afterAck = stdout.startsWith(READY_ACK) ? stdout.slice(READY_ACK.length) : stdout;
  const start = afterAck.indexOf(MARKER);
  if (start < 0) return { text: afterAck, pgid: null };
  const end = afterAck.indexOf(MARKER_END, start);
  const identity = parseMarker(afterAck.slice(start + MARKER.length, end));
  return { text: afterAck.slice(0, start) + afterAck.slice(end + MARKER_END.length), pgid: identity?.pgid ?? null };
}

/** The same command wrapped as a fresh channel runs it. */
function runWrapped(shell: string, command: string): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn('setsid', [shell, '-c', wrapCommand(command, newRunId(), 30_000)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('latin1')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('latin1')));
    child.on('close', (code) => resolve({ code, stdout: runOutput(stdout).text, stderr }));
  });
}

function withoutLineNumbers(text: string): string {
  return text.replace(/^(dash: )\d+:/gm, '$1N:').replace(/^(bash: line )\d+:/gm, '$1N:');
}

const COMMANDS = [
  'echo plain',
  // Lines that are empty, start with the line prefix, or end in a backslash; a here-document.
  'printf "%s\\n" one\n\n.two\n..three\necho "four \\\nfive"\ncat <<EOF\n\nsix\nEOF',
  // Quotes, $ and a carriage return kept as they are.
  `echo 'single' "double \\$HOME" \`echo back\` $((6*7)) "cr\rlf"`,
  // What the shell's own variables show: no positional parameters, no mre_ variable, the marker.
  'echo "$#:$*"; set | grep -c "^mre_" ; echo "run=${MRE_RUN:+set}"',
  'exit 7',
  'echo out; echo err >&2; false',
  'echo "no newline at the end"\n',
];

describe.each(['dash', 'bash'])('a ready shell under %s', (shell) => {
  it.each(COMMANDS.map((command) => [JSON.stringify(command).slice(0, 60), command]))('runs %s exactly as a fresh wrapped channel does', async (_, command) => {
    const runId = newRunId();
    const ready = await runWithInput(shell, readyShellCommand(), [READY_PING, readyShellInput(command, runId, 30_000)]);
    const fresh = await runWrapped(shell, command);
    expect(ready.answeredBeforeRun).toBe(true);
    const { text, pgid } = runOutput(ready.stdout);
    expect(pgid).toBeGreaterThan(1);
    expect(text).toBe(fresh.stdout);
    // Error messages may give another line number: the shells count the lines of their whole script.
    expect(withoutLineNumbers(ready.stderr)).toBe(withoutLineNumbers(fresh.stderr));
    expect(ready.code).toBe(fresh.code);
  });

  it('marks the run with the run id it was sent', async () => {
    const runId = newRunId();
    const ready = await runWithInput(shell, readyShellCommand(), [READY_PING, readyShellInput('echo "$MRE_RUN"', runId, 30_000)]);
    expect(runOutput(ready.stdout).text).toBe(`${runId}\n`);
  });

  it('runs nothing when its input ends before the whole run was read', async () => {
    const file = join(scratch, `cut-${shell}`);
    const whole = readyShellInput(`touch ${file}`, newRunId(), 30_000);
    // Everything but the empty line that ends the command.
    const ready = await runWithInput(shell, readyShellCommand(), [READY_PING, whole.slice(0, -1)]);
    expect(ready.code).toBe(0);
    expect(runOutput(ready.stdout).text).toBe('');
    expect(existsSync(file)).toBe(false);
  });

  it('runs nothing when its input ends before the ping, or when the run id or seconds are not what the relay sends', async () => {
    const file = join(scratch, `odd-${shell}`);
    const command = `.touch ${file}\n\n`;
    for (const head of ['', `x;touch${file} 5\n`, `${newRunId()} 5;touch\n`, `${newRunId()}\n`]) {
      const pieces = head === '' ? [] : [READY_PING, head + command];
      const ready = await runWithInput(shell, readyShellCommand(), pieces);
      expect(ready.code).toBe(0);
      expect(existsSync(file)).toBe(false);
    }
  });
});

/** A stand-in channel: records what is written, and emits what a test makes it receive. */
class FakeChannel extends EventEmitter {
  written: string[] = [];
  write(text: string): boolean {
    this.written.push(text);
    return true;
  }
}

describe('the relay pinging a ready shell', () => {
  const ping = (channel: FakeChannel, timeoutMs = 1_000, signal = new AbortController().signal) =>
    pingReadyShell(channel as unknown as ClientChannel, timeoutMs, signal);

  it('is answered by the ack, even in pieces, after writing only the ping', async () => {
    const channel = new FakeChannel();
    const answer = ping(channel);
    expect(channel.written).toEqual([READY_PING]);
    channel.emit('data', Buffer.from(READY_ACK.slice(0, 1), 'latin1'));
    channel.emit('data', Buffer.from(READY_ACK.slice(1), 'latin1'));
    expect(await answer).toBe('answered');
    // It no longer listens: what the run prints is the caller's.
    expect(channel.listenerCount('data')).toBe(0);
  });

  it('calls anything else odd, a close closed, no answer silent, and the caller giving up cancelled', async () => {
    const odd = new FakeChannel();
    const oddAnswer = ping(odd);
    odd.emit('data', Buffer.from('Welcome to the host\n'));
    expect(await oddAnswer).toBe('odd');

    const closed = new FakeChannel();
    const closedAnswer = ping(closed);
    closed.emit('close');
    expect(await closedAnswer).toBe('closed');

    expect(await ping(new FakeChannel(), 50)).toBe('silent');

    const controller = new AbortController();
    const cancelled = ping(new FakeChannel(), 1_000, controller.signal);
    controller.abort();
    expect(await cancelled).toBe('cancelled');
  });
});
