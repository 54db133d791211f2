/**
 * The wrapper and stop script run under dash and bash on this machine (as the host would run
 * them): output and exit code untouched, marker parsed, a marked setsid child found and stopped,
 * the stop script's report read with bounds.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_STOP, MARKER, MARKER_END, MAX_LEFT_REPORTED, newRunId, parseLeft, parseMarker, stopCommand, wrapCommand } from '../../../relay/host-stop.ts';
import { quoteShellWord } from '../../../shared/shell-quote.ts';

/** PIDs whose command line is exactly `argv` joined by spaces (NUL-separated in /proc). */
function pidsRunning(commandLine: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim() === commandLine) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function run(shell: string, script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // setsid: the shell leads its own session and group, as sshd's login shell does.
    const child = spawn('setsid', [shell, '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('latin1')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('latin1')));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Start the wrapped command and resolve once its shell has exited and the marker was read, while
 * whatever the command left behind may still hold the output pipe.
 */
function startDetached(shell: string, script: string): Promise<{ stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn('setsid', [shell, '-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('latin1')));
    child.on('exit', () => resolve({ stdout }));
  });
}

describe('parsing what the host prints', () => {
  it('reads the marker with and without an output pipe, and refuses anything else', () => {
    expect(parseMarker('1234 5678')).toEqual({ pgid: 1234, output: '5678' });
    expect(parseMarker('1234 ')).toEqual({ pgid: 1234, output: null });
    // A pty run: its output is a terminal, named so that no devpts inode number is taken for a pipe's.
    expect(parseMarker('1234 tty')).toEqual({ pgid: 1234, output: 'tty' });
    for (const bad of ['1 2', '0 ', 'x ', '1234 /tmp/file', '1234 pipe:[1]', '1234 1; rm -rf /', '12345678901 ', '', '1234 tty1', '1234 /dev/pts/0']) {
      expect(parseMarker(bad)).toBeNull();
    }
  });

  it('keeps at most the bounded number of reported processes, printable only', () => {
    const lines = Array.from({ length: 50 }, (_, i) => `mre-left ${100 + i} sl\x1beep`).join('\n');
    const left = parseLeft(`noise\n${lines}\nmre-left notapid x\n`);
    expect(left).toHaveLength(MAX_LEFT_REPORTED);
    expect(left[0]).toBe('100 (sl?eep)');
    expect(parseLeft('mre-left 12 ' + 'x'.repeat(500))).toEqual([]);
  });

  it('refuses a run id that is not 16 hex digits (it goes into a shell word)', () => {
    expect(() => wrapCommand('true', "1234'; reboot; '", 1000)).toThrow();
    expect(() => stopCommand({ pgid: 1, output: null }, newRunId())).toThrow();
  });
});

for (const shell of ['dash', 'bash']) {
  describe(`under ${shell}`, () => {
    it('leaves the exit code, stdout and stderr as the command made them', async () => {
      const result = await run(shell, wrapCommand('echo out; echo err >&2; exit 5', newRunId(), 60_000));
      expect(result.code).toBe(5);
      expect(result.stderr).toBe('err\n');
      const end = result.stdout.indexOf(MARKER_END);
      expect(result.stdout.startsWith(MARKER)).toBe(true);
      expect(parseMarker(result.stdout.slice(MARKER.length, end))).not.toBeNull();
      expect(result.stdout.slice(end + MARKER_END.length)).toBe('out\n');
    });

    it('for a pty run, reports "tty" as the output and leaves stdin to the command', async () => {
      const result = await run(
        shell,
        `echo piped | ${shell} -c ${quoteShellWord(wrapCommand('read x; echo "got $x"', newRunId(), 60_000, DEFAULT_STOP, 'terminal'))}`,
      );
      const end = result.stdout.indexOf(MARKER_END);
      expect(parseMarker(result.stdout.slice(MARKER.length, end))).toEqual({ pgid: expect.any(Number), output: 'tty' });
      expect(result.stdout.slice(end + MARKER_END.length)).toBe('got piped\n');
      const empty = await run(shell, `echo piped | ${shell} -c ${quoteShellWord(wrapCommand('read x; echo "got $x"', newRunId(), 60_000))}`);
      expect(empty.stdout.endsWith('got \n')).toBe(true);
    });

    it("the host's watchdog stops a marked setsid child at the deadline after its parent ended, with no relay", async () => {
      const seconds = `1012.${process.pid}${shell === 'dash' ? 1 : 2}`;
      // Timeout 1 s: the watchdog fires 1 + 2 s after the start, though the shell itself ended at once.
      // The shell leads its own session (detached: setsid without a fork) and this process reaps it
      // at once, as sshd does: the watchdog must see its leader really gone, not a zombie.
      const shellExited = new Promise<void>((resolve) => {
        const child = spawn(shell, ['-c', wrapCommand(`setsid sleep ${seconds} >/dev/null 2>&1 &`, newRunId(), 1_000)], { detached: true, stdio: 'ignore' });
        child.on('exit', () => resolve());
      });
      await shellExited;
      try {
        const appeared = performance.now() + 5_000;
        while (pidsRunning(`sleep ${seconds}`).length === 0 && performance.now() < appeared) await new Promise((resolve) => setTimeout(resolve, 50));
        expect(pidsRunning(`sleep ${seconds}`)).toHaveLength(1);
        const until = performance.now() + 10_000;
        while (pidsRunning(`sleep ${seconds}`).length > 0 && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 100));
        expect(pidsRunning(`sleep ${seconds}`)).toEqual([]);
      } finally {
        for (const pid of pidsRunning(`sleep ${seconds}`)) process.kill(pid, 'SIGKILL');
      }
    }, 30_000);

    it('stops a marked setsid child that let go of the output, and reports nothing left', async () => {
      const runId = newRunId();
      const seconds = `1011.${process.pid}${shell === 'dash' ? 1 : 2}`;
      const result = await run(shell, wrapCommand(`setsid sleep ${seconds} >/dev/null 2>&1 &`, runId, 60_000));
      const identity = parseMarker(result.stdout.slice(MARKER.length, result.stdout.indexOf(MARKER_END)));
      if (!identity) throw new Error('no marker');
      // The command ended normally; its detached child runs on (a daemon is allowed to).
      const until = performance.now() + 5_000;
      while (pidsRunning(`sleep ${seconds}`).length === 0 && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(pidsRunning(`sleep ${seconds}`)).toHaveLength(1);
      const stop = spawnSync(shell, ['-c', stopCommand(identity, runId)], { encoding: 'utf8', timeout: 20_000 });
      expect(stop.status).toBe(0);
      expect(parseLeft(stop.stdout)).toEqual([]);
      const left = pidsRunning(`sleep ${seconds}`);
      for (const pid of left) process.kill(pid, 'SIGKILL');
      expect(left).toEqual([]);
    });
    it('finds a process that cleared its environment but holds the output, whatever files the working directory holds', async () => {
      // The stop script runs in the SSH user's home; names there such as "pipe:1" must not change what it reads.
      const home = mkdtempSync(join(tmpdir(), 'mre-stop-cwd-'));
      for (let digit = 0; digit < 10; digit += 1) {
        writeFileSync(join(home, `pipe:${digit}`), '');
        writeFileSync(join(home, `socket:${digit}`), '');
      }
      const runId = newRunId();
      // Unique to this run, so a sleep left by an earlier, failed run cannot be counted.
      const seconds = `1011.${process.pid}${shell === 'dash' ? 3 : 4}`;
      try {
        const started = await startDetached(shell, wrapCommand(`setsid env -i sleep ${seconds} &`, runId, 60_000));
        const identity = parseMarker(started.stdout.slice(MARKER.length, started.stdout.indexOf(MARKER_END)));
        if (!identity?.output) throw new Error(`no marker with an output pipe: ${JSON.stringify(started.stdout)}`);
        const until = performance.now() + 5_000;
        while (pidsRunning(`sleep ${seconds}`).length === 0 && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
        expect(pidsRunning(`sleep ${seconds}`)).toHaveLength(1);
        const stop = spawnSync(shell, ['-c', stopCommand(identity, runId)], { cwd: home, encoding: 'utf8', timeout: 20_000 });
        expect(stop.status).toBe(0);
        const left = pidsRunning(`sleep ${seconds}`);
        for (const pid of left) process.kill(pid, 'SIGKILL');
        expect(left).toEqual([]);
      } finally {
        for (const pid of pidsRunning(`sleep ${seconds}`)) process.kill(pid, 'SIGKILL');
        rmSync(home, { recursive: true, force: true });
      }
    });
  });
}
