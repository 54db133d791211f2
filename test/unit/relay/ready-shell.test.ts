/**
 * A ready shell (host-stop.ts readyShellCommand) under dash and bash, as a login shell started
 * ahead of its run: it answers the ping, then runs exactly the command it is sent, as wrapCommand
 * would, both under the run id its waiting watchdog was started for and under another (a watchdog
 * of the run's own); a run cut short or malformed runs nothing. Its waiting watchdog counts only
 * from the run's start, is no child of the shell, and ends with a shell that got no run. And the
 * relay's side of the ping (ready-shell-ping.ts) against a channel that answers, prints something
 * else, closes or is silent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientChannel } from 'ssh2';
import { afterAll, describe, expect, it } from 'vitest';
import {
  MARKER,
  MARKER_END,
  newRunId,
  parseMarker,
  READY_ACK,
  READY_PING,
  readyShellCommand,
  readyShellInput,
  readyWatchFor,
  wrapCommand,
  type ReadyWatch,
} from '../../../relay/host-stop.ts';
import { pingReadyShell } from '../../../relay/ready-shell-ping.ts';
import { waitFor } from '../../harness/wait.ts';

const scratch = mkdtempSync(join(tmpdir(), 'mre-ready-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Start `script` under `shell` as sshd would (its own session), write `input` in the given pieces, read everything. */
function runWithInput(
  shell: string,
  script: string,
  pieces: string[],
  endInput = true,
  started: (child: ChildProcess) => void = () => undefined,
): Promise<Ran & { answeredBeforeRun: boolean }> {
  return new Promise((resolve) => {
    const child = spawn('setsid', [shell, '-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    started(child);
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
  return text.replace(/^(dash: )\d+:/gm, '$1N:').replace(/^(bash: (?:eval: )?line )\d+:/gm, '$1N:');
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
  // A syntax error ends the run as it ends a fresh one.
  'echo before\nif then fi',
];

/** The processes whose command line has `text`, with their parent and arguments. */
function processesWith(text: string): Array<{ pid: number; ppid: number; argv: string[] }> {
  const found: Array<{ pid: number; ppid: number; argv: string[] }> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (!argv.join(' ').includes(text)) continue;
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      found.push({ pid: Number(name), ppid: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]), argv });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** The watchdogs guarding the run whose group leader (the login shell) is `pgid`. */
const watchdogsOf = (pgid: number): Array<{ pid: number; ppid: number; argv: string[] }> =>
  processesWith('mre-watchdog').filter((process) => process.argv[3] === 'mre-watchdog' && process.argv[4] === String(pgid));

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntil(check: () => boolean, ms: number): Promise<void> {
  const until = performance.now() + ms;
  while (!check() && performance.now() < until) await sleep(50);
}

/**
 * The processes running `sleep MARKER` (a duration no other test writes): sleep itself, once its
 * exec is done. A process on its way there (`setsid sleep MARKER`) is not counted: while it execs,
 * its command line reads empty for a moment, and a "none left" look in that moment passed a wait
 * for the watchdog at once (CI: the run's sleep still there 44 ms into a 10 s wait).
 */
const sleeping = (marker: string): number[] =>
  processesWith(`sleep ${marker}`)
    .filter((process) => process.argv[0] === 'sleep' && process.argv[1] === marker)
    .map((process) => process.pid);

/** Waits up to `ms` for the host to have stopped every `sleep MARKER`, and says none is left. */
async function expectStopped(marker: string, ms: number): Promise<void> {
  await waitUntil(() => sleeping(marker).length === 0, ms);
  expect(sleeping(marker)).toEqual([]);
}

/** What a test left running, by PID. */
function killSleeping(marker: string): void {
  // Every stage, a sleep still on its way to exec included.
  for (const { pid } of processesWith(`sleep ${marker}`)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // ended meanwhile
    }
  }
}

/** A watch for runs of 30 s, and the run id each path sends: the watch's own, or another (a watchdog of the run's own). */
const PATHS: Array<[string, (watch: ReadyWatch) => string]> = [
  ['under the run id its watchdog waits with', (watch) => watch.runId],
  ['under another run id', () => newRunId()],
];

describe.each(['dash', 'bash'])('a ready shell under %s', (shell) => {
  describe.each(PATHS)('%s', (_path, runIdFor) => {
    it.each(COMMANDS.map((command) => [JSON.stringify(command).slice(0, 60), command]))(
      'runs %s exactly as a fresh wrapped channel does',
      async (_, command) => {
        const watch = readyWatchFor(30_000);
        const ready = await runWithInput(shell, readyShellCommand(watch), [READY_PING, readyShellInput(command, runIdFor(watch), 30_000)]);
        const fresh = await runWrapped(shell, command);
        expect(ready.answeredBeforeRun).toBe(true);
        const { text, pgid } = runOutput(ready.stdout);
        expect(pgid).toBeGreaterThan(1);
        expect(text).toBe(fresh.stdout);
        // Error messages may give another line number: the shells count the lines of their whole script.
        expect(withoutLineNumbers(ready.stderr)).toBe(withoutLineNumbers(fresh.stderr));
        expect(ready.code).toBe(fresh.code);
      },
    );

    it('marks the run with the run id it was sent, and a bare `wait` in it waits for its own children only', async () => {
      const watch = readyWatchFor(30_000);
      const runId = runIdFor(watch);
      const started = performance.now();
      const ready = await runWithInput(shell, readyShellCommand(watch), [READY_PING, readyShellInput('sleep 0.2 & wait; echo "$MRE_RUN"', runId, 30_000)]);
      expect(runOutput(ready.stdout).text).toBe(`${runId}\n`);
      // A watchdog the shell waited for would hold the run until its deadline (32 s).
      expect(performance.now() - started).toBeLessThan(10_000);
    }, 20_000);
  });

  it("starts its watchdog ahead of the run, for the watch's run id and seconds, as no child of its own; another run's seconds get a watchdog of their own", async () => {
    const watch = readyWatchFor(30_000);
    let child: ChildProcess | undefined;
    const ready = runWithInput(shell, readyShellCommand(watch), [READY_PING], false, (started) => (child = started));
    const pgid = (child as ChildProcess).pid as number;
    try {
      await waitUntil(() => watchdogsOf(pgid).length === 1, 5_000);
      const [waiting] = watchdogsOf(pgid);
      expect(waiting?.argv.slice(5, 8)).toEqual([expect.stringMatching(/^[0-9]+$/), String(watch.seconds), watch.runId]);
      expect(waiting?.ppid).not.toBe(pgid);
      // A run of 5 s under another id: the waiting watchdog ends, one for 7 s (5 + slack) takes over.
      const runId = newRunId();
      child?.stdin?.write(readyShellInput('sleep 30', runId, 5_000));
      await waitUntil(() => watchdogsOf(pgid).some((process) => process.pid !== waiting?.pid), 5_000);
      await waitUntil(() => watchdogsOf(pgid).length === 1, 5_000);
      expect(watchdogsOf(pgid).map((process) => process.argv.slice(6, 8))).toEqual([['7', runId]]);
    } finally {
      process.kill(-pgid, 'SIGKILL');
      child?.stdin?.end();
      await ready;
    }
  });

  it('ends its waiting watchdog when its input ends with no run', async () => {
    const watch = readyWatchFor(30_000);
    let child: ChildProcess | undefined;
    const ready = runWithInput(shell, readyShellCommand(watch), [READY_PING], false, (started) => (child = started));
    const pgid = (child as ChildProcess).pid as number;
    await waitUntil(() => watchdogsOf(pgid).length === 1, 5_000);
    expect(watchdogsOf(pgid)).toHaveLength(1);
    child?.stdin?.end();
    expect((await ready).code).toBe(0);
    await waitUntil(() => watchdogsOf(pgid).length === 0, 3_000);
    expect(watchdogsOf(pgid)).toEqual([]);
  });

  it('stops, at the deadline and with nobody to stop it, a run that gave the shell another stdin of its own', async () => {
    const watch = readyWatchFor(1_000);
    const marker = `1016.${process.pid}${shell === 'dash' ? 1 : 2}`;
    let child: ChildProcess | undefined;
    const ready = runWithInput(shell, readyShellCommand(watch), [READY_PING], false, (started) => (child = started));
    try {
      // The command swaps the shell's stdin at once, before the watchdog's next tick could see /dev/null there.
      child?.stdin?.write(readyShellInput(`exec </proc/version; sleep ${marker}`, watch.runId, 1_000));
      await waitUntil(() => sleeping(marker).length === 1, 5_000);
      expect(sleeping(marker)).toHaveLength(1);
      await expectStopped(marker, 10_000);
    } finally {
      killSleeping(marker);
      child?.stdin?.end();
      await ready;
    }
  }, 30_000);

  it('takes no stray USR1 for its run: a watchdog signalled while the shell waits does not count, and the run after it gets its seconds', async () => {
    // 1 s runs: the watchdog gives 3 s. A stray USR1 now, then 5 s of waiting: counted, it would have stopped the waiting shell.
    const watch = readyWatchFor(1_000);
    let child: ChildProcess | undefined;
    let ended = false;
    const ready = runWithInput(shell, readyShellCommand(watch), [READY_PING], false, (started) => {
      child = started;
      started.once('exit', () => (ended = true));
    });
    const pgid = (child as ChildProcess).pid as number;
    try {
      await waitUntil(() => watchdogsOf(pgid).length === 1, 5_000);
      const [waiting] = watchdogsOf(pgid);
      process.kill(waiting?.pid as number, 'SIGUSR1');
      await sleep(5_000);
      expect(ended).toBe(false);
      expect(watchdogsOf(pgid).map((process) => process.pid)).toEqual([waiting?.pid]);
      child?.stdin?.write(readyShellInput('echo still here', watch.runId, 1_000));
      child?.stdin?.end();
      const ran = await ready;
      expect(runOutput(ran.stdout).text).toBe('still here\n');
      expect(ran.code).toBe(0);
    } finally {
      if (!ended) process.kill(-pgid, 'SIGKILL');
      await ready;
    }
  }, 30_000);

  it('stops, at the deadline and with nobody to stop it, a marked child the run left behind when the shell ended at once', async () => {
    const watch = readyWatchFor(1_000);
    const marker = `1015.${process.pid}${shell === 'dash' ? 1 : 2}`;
    try {
      // The shell ends within the watchdog's tick that armed it: the watchdog must count all the same.
      const ready = await runWithInput(shell, readyShellCommand(watch), [
        READY_PING,
        readyShellInput(`setsid sleep ${marker} >/dev/null 2>&1 &`, watch.runId, 1_000),
      ]);
      expect(ready.code).toBe(0);
      await waitUntil(() => sleeping(marker).length === 1, 5_000);
      expect(sleeping(marker)).toHaveLength(1);
      await expectStopped(marker, 10_000);
    } finally {
      killSleeping(marker);
    }
  }, 30_000);

  it('counts the deadline from the run, not from the shell: a run after a long wait still gets its seconds, then is stopped with nobody to stop it', async () => {
    // 1 s runs: the watchdog gives 3 s. The shell waits 4 s for its run first.
    const watch = readyWatchFor(1_000);
    const marker = `1013.${process.pid}${shell === 'dash' ? 1 : 2}`;
    let child: ChildProcess | undefined;
    const ready = runWithInput(shell, readyShellCommand(watch), [READY_PING], false, (started) => (child = started));
    const pgid = (child as ChildProcess).pid as number;
    try {
      await sleep(4_000);
      child?.stdin?.write(readyShellInput(`setsid sleep ${marker} >/dev/null 2>&1 & sleep ${marker}`, watch.runId, 1_000));
      await waitUntil(() => sleeping(marker).length === 2, 5_000);
      expect(sleeping(marker)).toHaveLength(2);
      await sleep(1_000);
      expect(sleeping(marker)).toHaveLength(2);
      await expectStopped(marker, 8_000);
    } finally {
      killSleeping(marker);
      child?.stdin?.end();
      await ready;
    }
  }, 30_000);

  it('runs nothing when its input ends before the whole run was read', async () => {
    const file = join(scratch, `cut-${shell}`);
    const whole = readyShellInput(`touch ${file}`, newRunId(), 30_000);
    // Everything but the empty line that ends the command.
    const ready = await runWithInput(shell, readyShellCommand(readyWatchFor(30_000)), [READY_PING, whole.slice(0, -1)]);
    expect(ready.code).toBe(0);
    expect(runOutput(ready.stdout).text).toBe('');
    expect(existsSync(file)).toBe(false);
  });

  it('runs nothing when its input ends before the ping, or when the run id or seconds are not what the relay sends', async () => {
    const file = join(scratch, `odd-${shell}`);
    const command = `.touch ${file}\n\n`;
    for (const head of ['', `x;touch${file} 5\n`, `${newRunId()} 5;touch\n`, `${newRunId()}\n`]) {
      const pieces = head === '' ? [] : [READY_PING, head + command];
      const ready = await runWithInput(shell, readyShellCommand(readyWatchFor(30_000)), pieces);
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

describe.each(['dash', 'bash'])('a ready shell under %s, pinged more than once', (shell) => {
  it('answers every ping before its run (one as it starts, another after a wait), then runs the run', async () => {
    const watch = readyWatchFor(30_000);
    const child = spawn('setsid', [shell, '-c', readyShellCommand(watch)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    const answers = (count: number): Promise<boolean> =>
      waitFor(() => stdout === READY_ACK.repeat(count), 5_000, `answer ${count}`).then(
        () => true,
        () => false,
      );
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('latin1')));
    child.stdin.write(READY_PING);
    expect(await answers(1)).toBe(true);
    child.stdin.write(READY_PING);
    expect(await answers(2)).toBe(true);
    child.stdin.end(readyShellInput('echo ran "$MRE_RUN"', watch.runId, 30_000));
    expect(await closed).toBe(0);
    expect(stdout.startsWith(READY_ACK.repeat(2))).toBe(true);
    expect(runOutput(stdout.slice(READY_ACK.length)).text).toBe(`ran ${watch.runId}\n`);
  });
});
