import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execStructuredOutput } from '../../shared/exec-output.ts';
import { childrenOf, remoteProcesses } from '../harness/sshd.ts';
import { startStack, textOf, type Stack } from '../harness/stack.ts';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack();
});

afterAll(async () => {
  await stack?.stop();
});

/** Poll for a remote process to disappear (the sandbox's init reaps orphans lazily). */
async function gone(pattern: string, withinMs = 5000): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (Date.now() < until) {
    if (remoteProcesses(pattern, stack.sshd.user).length === 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return remoteProcesses(pattern, stack.sshd.user).length === 0;
}

async function appeared(pattern: string, withinMs = 5000): Promise<void> {
  const until = Date.now() + withinMs;
  while (remoteProcesses(pattern, stack.sshd.user).length === 0) {
    if (Date.now() > until) throw new Error(`${pattern} never started`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('tools over the full local stack', () => {
  it('offers the host, command, file and link tools (not the local-path ones) with honest annotations', async () => {
    const { tools } = await stack.mcp.client.listTools();
    const byName = new Map(tools.map((tool) => [tool.name, tool]));
    // The stack signs in as the deployment's admin, who also gets audit_log.
    expect([...byName.keys()].sort()).toEqual([
      'audit_log',
      'relay_ping',
      'ssh_approval_status',
      'ssh_cancel_job',
      'ssh_check_command',
      'ssh_exec_command',
      'ssh_job_output',
      'ssh_job_status',
      'ssh_list_directory',
      'ssh_list_hosts',
      'ssh_list_jobs',
      'ssh_read_file',
      'ssh_request_download',
      'ssh_request_upload',
      'ssh_start_job',
      'ssh_write_file',
    ]);
    expect(byName.get('ssh_exec_command')?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    expect(byName.get('ssh_list_hosts')?.annotations).toMatchObject({ readOnlyHint: true });
    expect(byName.get('ssh_exec_command')?.outputSchema).toBeDefined();
  });

  it('lists the configured host as reachable', async () => {
    const result = await stack.call('ssh_list_hosts', {});
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toMatchObject({
      relays: [{ id: 'test-relay', connected: true }],
      hosts: [{ name: 'testhost', reachable: true, target: `${stack.sshd.user}@127.0.0.1:${stack.sshd.port}` }],
    });
    expect(textOf(result)).toContain('testhost');
  });

  it('runs a command and returns stdout, stderr and the exit code', async () => {
    const result = await stack.call('ssh_exec_command', { command: 'echo out; echo err >&2; id -un; exit 3' });
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toBe(`STDOUT:\nout\n${stack.sshd.user}\n\n\nSTDERR:\nerr\n\n\nEXIT CODE: 3`);
    expect(result.structuredContent).toMatchObject({ exit_code: 3, stdout: `out\n${stack.sshd.user}\n`, stderr: 'err\n', timed_out: false });
  });

  it('returns valid JSON, also as structured content matching the output schema', async () => {
    const result = await stack.call('ssh_exec_command', { command: `printf '%s' '{"not":"json'; printf '\\001\\033[0m' >&2`, response_format: 'json' });
    const parsed: unknown = JSON.parse(textOf(result));
    expect(parsed).toEqual(result.structuredContent);
    expect(execStructuredOutput.safeParse(parsed).success).toBe(true);
    expect(result.structuredContent).toMatchObject({ stdout: '{"not":"json', stderr: '\u0001\u001b[0m', exit_code: 0 });
  });

  it('returns binary output as valid text with replacement characters', async () => {
    const result = await stack.call('ssh_exec_command', { command: "printf 'a\\377\\376b'", response_format: 'json' });
    expect(result.structuredContent).toMatchObject({ stdout: 'a\ufffd\ufffdb', stdout_total_bytes: 4 });
  });

  it('gives the command no stdin, so a reader sees end-of-file instead of hanging', async () => {
    const result = await stack.call('ssh_exec_command', { command: 'cat; echo after-cat', timeout: 5 });
    expect(result.structuredContent).toMatchObject({ stdout: 'after-cat\n', exit_code: 0, timed_out: false });
  });

  it('runs the command text literally in the login shell, quotes and all', async () => {
    const result = await stack.call('ssh_exec_command', { command: `x='a b'; printf '[%s]' "$x" 'it'"'"'s' "\\$(id)"` });
    expect(textOf(result)).toContain("[a b][it's][$(id)]");
    expect(result.structuredContent).toMatchObject({ stdout: "[a b][it's][$(id)]" });
  });

  it('truncates huge output without losing the exit code, promptly and with relay memory bounded', async () => {
    const baseline = relayRssKb();
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, relayRssKb());
    }, 10);
    const started = Date.now();
    const result = await stack.call('ssh_exec_command', { command: 'head -c 1000000000 /dev/zero | tr "\\0" x; echo done >&2; exit 5', timeout: 120 });
    const elapsed = Date.now() - started;
    clearInterval(sampler);
    const text = textOf(result);
    expect(result.structuredContent).toMatchObject({ exit_code: 5, stdout_truncated: true, stdout_total_bytes: 1_000_000_000, stderr: 'done\n' });
    expect(text).toContain('[stdout truncated: showing the first');
    expect(text).toContain('of 1,000,000,000 bytes');
    expect(text.endsWith('EXIT CODE: 5')).toBe(true);
    expect(text.length).toBeLessThan(27_000);
    // Buffering the output would add 1 GB to the relay's resident memory. What a streaming relay
    // adds is garbage-collector slack that does not grow with the output: about 70 MB on an idle
    // machine, up to about 105 MB under CI load. A quarter of the output separates the two widely.
    expect(peak - baseline).toBeLessThan(256 * 1024);
    // "Promptly": the relay streams at hundreds of MB/s; a relay that buffered or re-read would not.
    expect(elapsed).toBeLessThan(20_000);
  });

  it('stops a command at its timeout, returns the output so far, and leaves no process behind', async () => {
    const started = Date.now();
    const result = await stack.call('ssh_exec_command', { command: 'echo begun; sleep 37.101 & sleep 37.102; echo never', timeout: 1 });
    const elapsed = Date.now() - started;
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('begun');
    expect(textOf(result)).toContain('TIMED OUT');
    expect(textOf(result)).not.toContain('never');
    expect(result.structuredContent).toMatchObject({ timed_out: true, exit_code: null });
    expect(elapsed).toBeLessThan(1000 + 4000);
    expect(await gone('sleep 37.10')).toBe(true);
  });

  it('kills a command that ignores SIGTERM when it times out', async () => {
    const result = await stack.call('ssh_exec_command', { command: "trap '' TERM; sleep 37.201; sleep 37.202", timeout: 1 });
    expect(result.structuredContent).toMatchObject({ timed_out: true });
    expect(await gone('sleep 37.20', 6000)).toBe(true);
  });

  it('stops the remote process when the client cancels the call', async () => {
    const controller = new AbortController();
    const call = stack.call('ssh_exec_command', { command: 'sleep 37.301', timeout: 60 }, { signal: controller.signal });
    await appeared('sleep 37.301');
    controller.abort();
    await expect(call).rejects.toThrow();
    expect(await gone('sleep 37.301')).toBe(true);
  });

  it('reconnects to the host when its SSH connection drops', async () => {
    expect((await stack.call('ssh_exec_command', { command: 'echo before' })).structuredContent).toMatchObject({ stdout: 'before\n' });
    // Each SSH connection is served by a child of the listening sshd; ending them drops the pool's connections.
    const served = childrenOf(stack.sshd.pid);
    expect(served.length).toBeGreaterThan(0);
    for (const pid of served) process.kill(pid, 'SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const after = await stack.call('ssh_exec_command', { command: 'echo after' });
    expect(after.structuredContent).toMatchObject({ stdout: 'after\n', exit_code: 0 });
  });

  it('answers relay_ping', async () => {
    const result = await stack.call('relay_ping', {});
    expect(result.structuredContent).toMatchObject({ relay_id: 'test-relay', relay_version: '0.1.0' });
  });

  it('runs 50 concurrent commands on one host despite sshd allowing 10 channels per connection', async () => {
    const results = await Promise.all(Array.from({ length: 50 }, (_, index) => stack.call('ssh_exec_command', { command: `sleep 0.2; echo ${index}` })));
    expect(results.map((result) => (result.structuredContent as { stdout?: string }).stdout)).toEqual(Array.from({ length: 50 }, (_, index) => `${index}\n`));
  });
});

describe('remote output is data', () => {
  // ESC [31m (colour), OSC 0 (window title) ending in BEL, CR, DEL, CSI as the C1 byte, a bidi override.
  const hostile = String.raw`printf 'A\033[31mB\033]0;owned\007C\rD\177E\302\233F\342\200\256G\n'; printf '\033[2J' >&2`;

  it('shows control characters in text results as visible escapes, keeping newlines', async () => {
    const result = await stack.call('ssh_exec_command', { command: hostile });
    const text = textOf(result);
    expect(text).toContain(String.raw`A\x1b[31mB\x1b]0;owned\x07C\rD\x7fE\x9bF\u{202e}G`);
    expect(text).toContain(String.raw`STDERR:` + '\n' + String.raw`\x1b[2J`);
    expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e]/);
  });

  it('keeps the exact bytes in json results and in structured content', async () => {
    const result = await stack.call('ssh_exec_command', { command: hostile, response_format: 'json' });
    const exact = 'A\u001b[31mB\u001b]0;owned\u0007C\rD\u007fE\u009bF\u202eG\n';
    expect(JSON.parse(textOf(result))).toMatchObject({ stdout: exact, stderr: '\u001b[2J' });
    expect(result.structuredContent).toMatchObject({ stdout: exact });
    expect(textOf(result)).not.toMatch(/[\u007f-\u009f\u202e]/);
  });

  it('escapes control characters in file names it lists and in paths it echoes in errors', async () => {
    const dir = `mre-visible-${process.pid}`;
    const written = await stack.call('ssh_write_file', { path: `${dir}/x\u001b[8my`, content: 'hi', create_dirs: true });
    expect(written.isError, textOf(written)).toBeFalsy();
    try {
      expect(textOf(written)).toContain(String.raw`x\x1b[8my`);
      const listing = await stack.call('ssh_list_directory', { path: dir });
      expect(textOf(listing)).toContain(String.raw`x\x1b[8my`);
      expect(textOf(listing)).not.toContain('\u001b');
      const json = await stack.call('ssh_list_directory', { path: dir, response_format: 'json' });
      expect(JSON.stringify(json.structuredContent)).toContain('x\\u001b[8my');
      const missing = await stack.call('ssh_read_file', { path: `${dir}/\u001b]0;title\u0007nope` });
      expect(missing.isError).toBe(true);
      expect(textOf(missing)).toContain(String.raw`\x1b]0;title\x07nope`);
      expect(textOf(missing)).not.toMatch(/[\u0000-\u0008\u000b-\u001f]/);
    } finally {
      await stack.call('ssh_exec_command', { command: `rm -rf ${dir}` });
    }
  });
});

describe('argument validation', () => {
  it.each([
    ['an empty command', { command: '' }, 'command must not be empty'],
    ['a command of 10,001 characters', { command: 'x'.repeat(10_001) }, 'command must be at most 10,000 characters'],
    ['timeout 0', { command: 'true', timeout: 0 }, 'timeout must be at least 1 second'],
    ['timeout 301', { command: 'true', timeout: 301 }, 'timeout must be at most 300 seconds'],
    ['an unknown field', { command: 'true', run_as: 'root' }, 'run_as'],
    ['sudo that is not a boolean', { command: 'true', sudo: 'yes' }, 'sudo must be true or false'],
    ['sudo with a pty', { command: 'true', sudo: true, pty: true }, 'sudo and pty cannot be combined'],
    ['a command that is not a string', { command: ['ls'] }, 'command must be a string'],
    ['a host that is not a string', { command: 'true', host: 7 }, 'host must be a string'],
  ])('refuses %s before anything reaches the relay', async (_label, args, message) => {
    const requestsBefore = relayRequestCount();
    const result = await stack.call('ssh_exec_command', args);
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('Input validation error');
    expect(textOf(result)).toContain(message);
    expect(relayRequestCount()).toBe(requestsBefore);
  });

  it('says which hosts exist when asked for one that does not', async () => {
    const result = await stack.call('ssh_exec_command', { command: 'true', host: 'nope' });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('Error [host_not_configured]: Host "nope" is not configured. Known hosts: testhost.');
  });
});

function relayRequestCount(): number {
  return (stack.relay.process.output().match(/"msg":"request done"/g) ?? []).length;
}

function relayRssKb(): number {
  const status = readFileSync(`/proc/${stack.relay.process.pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? 'NaN');
}
