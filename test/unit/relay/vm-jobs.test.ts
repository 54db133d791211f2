/**
 * The VM job wrapper (relay/vm-jobs.ts) under dash and bash on this machine, as a guest agent
 * would run it (no HOME, no SHELL in its environment), and the reading of qm's answers: the exact
 * bytes come back through base64 and through the od fallback, and every answer that is not a
 * finished run is named, never read as output.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readVmAnswer, vmJobArgv } from '../../../relay/vm-jobs.ts';

/** What qm prints for a finished command (JSON::PP pretty, canonical), with the raw output as a JSON string. */
function qmAnswer(stdout: string, exitcode = 0): Buffer {
  return Buffer.from(JSON.stringify({ exitcode, exited: 1, 'out-data': stdout }, null, 3));
}

function runWrapped(shell: string, script: string, env: Record<string, string>): string {
  const [, , wrapper, name, ...rest] = vmJobArgv(['sh', '-c', script]);
  const ran = spawnSync(shell, ['-c', wrapper ?? '', name ?? '', ...rest], { env, encoding: 'latin1' });
  expect(ran.status).toBe(0);
  return ran.stdout;
}

const BINARY = "printf '\\377\\376\\000\\200caf\\303\\251\\n\\300'";
const BINARY_BYTES = [0xff, 0xfe, 0x00, 0x80, 0x63, 0x61, 0x66, 0xc3, 0xa9, 0x0a, 0xc0];
const PATH = '/usr/local/bin:/usr/bin:/bin';

describe.each(['/bin/sh', '/bin/bash'])('the VM job wrapper under %s', (shell) => {
  it('hands back the exact bytes through base64', () => {
    const answer = readVmAnswer(qmAnswer(runWrapped(shell, BINARY, { PATH })), '');
    expect(answer.kind === 'ran' && [...answer.stdout]).toEqual(BINARY_BYTES);
  });

  it('hands back the exact bytes through od where the guest has no base64', () => {
    const bin = mkdtempSync(join(tmpdir(), 'mre-vm-path-'));
    try {
      for (const tool of ['sh', 'od', 'awk', 'id', 'cat']) symlinkSync(`/usr/bin/${tool}`, join(bin, tool));
      const raw = runWrapped(shell, BINARY, { PATH: bin });
      expect(raw.startsWith('mre-vm-hex\n')).toBe(true);
      const answer = readVmAnswer(qmAnswer(raw), '');
      expect(answer.kind === 'ran' && [...answer.stdout]).toEqual(BINARY_BYTES);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it("takes HOME from the guest's passwd when the agent gives none (or /), keeps one it gives, and sets SHELL", () => {
    const home = userInfo().homedir;
    const read = (env: Record<string, string>): string => {
      const answer = readVmAnswer(qmAnswer(runWrapped(shell, 'printf "%s|%s" "$HOME" "$SHELL"', env)), '');
      return answer.kind === 'ran' ? answer.stdout.toString() : answer.kind;
    };
    // Without SHELL: bash where the guest has it (bash itself also fills SHELL from passwd).
    const [gotHome, gotShell] = read({ PATH }).split('|');
    expect(gotHome).toBe(home);
    expect(gotShell).toMatch(/\/bash$/);
    expect(read({ PATH, HOME: '/' }).split('|')[0]).toBe(home);
    expect(read({ PATH, HOME: '/srv/x', SHELL: '/bin/dash' })).toBe('/srv/x|/bin/dash');
  });
});

describe("reading qm's answer", () => {
  it('names every answer that is not a finished, readable run', () => {
    expect(readVmAnswer(Buffer.alloc(0), 'No QEMU guest agent configured\n')).toEqual({ kind: 'refused', message: 'No QEMU guest agent configured' });
    expect(readVmAnswer(Buffer.from('{\n   "pid" : 4242\n}\n'), 'timeout reached, returning pid\n')).toEqual({ kind: 'pending' });
    expect(readVmAnswer(Buffer.from(JSON.stringify({ exited: 1, exitcode: 0, 'out-data': 'mre-vm-b64\nAAAA', 'out-truncated': 1 })), '')).toEqual({
      kind: 'truncated',
    });
    for (const out of ['mre-vm-b64\nnot base64!', 'mre-vm-hex\nabc', 'mre-vm-hex\nzz', 'other\nAAAA', 'line 1\nline 2\n']) {
      expect(readVmAnswer(qmAnswer(out), '')).toEqual({ kind: 'unreadable' });
    }
    expect(readVmAnswer(Buffer.from('{ "exited" : 1, "out-data" : '), '')).toEqual({ kind: 'unreadable' });
    expect(readVmAnswer(Buffer.from('{ "exited" : "yes" }'), '')).toEqual({ kind: 'unreadable' });
    expect(readVmAnswer(Buffer.from(JSON.stringify({ exited: 0 })), '')).toEqual({ kind: 'unreadable' });
  });

  it('reads a finished run, an empty one included', () => {
    expect(readVmAnswer(qmAnswer('mre-vm-b64\n', 0), '')).toEqual({ kind: 'ran', stdout: Buffer.alloc(0), exitCode: 0 });
    const answer = readVmAnswer(qmAnswer('mre-vm-b64\naGVsbG8K\n', 1), '');
    expect(answer.kind === 'ran' && answer.stdout.toString()).toBe('hello\n');
  });
});
