import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CallToolResultSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execStructuredOutput } from '../../shared/exec-output.ts';
import { VERSION } from '../../shared/version.ts';
import { remoteProcesses, startSshd, type TestSshd } from '../harness/sshd.ts';
import { textOf } from '../harness/stack.ts';
import { connectStdio, rawStdioExchange, runCliOnce, stdioEnv, type StdioSession } from '../harness/stdio.ts';

let sshd: TestSshd;
let session: StdioSession;
let keys: string;

beforeAll(async () => {
  sshd = await startSshd();
  keys = mkdtempSync(join(tmpdir(), 'mre-stdio-keys-'));
  session = await connectStdio(stdioEnv(sshd));
});

afterAll(async () => {
  await session?.close();
  await sshd?.stop();
  rmSync(keys, { recursive: true, force: true });
});

async function call(target: StdioSession, name: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<CallToolResult> {
  return CallToolResultSchema.parse(await target.client.callTool({ name, arguments: args }, CallToolResultSchema, signal ? { signal } : {}));
}

async function gone(pattern: string, withinMs = 5000): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (Date.now() < until) {
    if (remoteProcesses(pattern, sshd.user).length === 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

function keyPair(name: string, passphrase = ''): string {
  const path = join(keys, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-f', path]);
  return path;
}

describe('the command line', () => {
  it('prints usage for --help and -h', () => {
    for (const flag of ['--help', '-h']) {
      const result = runCliOnce([flag], {});
      expect(result.status).toBe(0);
      expect(result.stdout).toContain('Usage:');
      expect(result.stdout).toContain('mcp-remote-exec relay');
      expect(result.stdout).toContain('I_ACCEPT_RISKS=true');
    }
  });

  it('prints the version for --version and -v', () => {
    for (const flag of ['--version', '-v']) expect(runCliOnce([flag], {})).toMatchObject({ status: 0, stdout: `${VERSION}\n` });
  });

  it('refuses an unknown command or option clearly', () => {
    const command = runCliOnce(['deploy'], {});
    expect(command.status).toBe(2);
    expect(command.stderr).toContain('unknown command "deploy"');
    const option = runCliOnce(['--host=x'], {});
    expect(option.status).toBe(2);
    expect(option.stderr).toContain("Unknown option '--host'");
  });
});

describe('startup errors', () => {
  it('refuses to start until the risks are accepted', () => {
    const result = runCliOnce([], stdioEnv(sshd, { I_ACCEPT_RISKS: 'false' }));
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('Risks not accepted');
    expect(result.stderr).toContain('I_ACCEPT_RISKS=true');
    expect(result.stdout).toBe('');
  });

  it('says no host is configured and how to configure one', () => {
    const result = runCliOnce([], stdioEnv(sshd, { HOST: '' }));
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('No SSH host configuration found. Set HOST, SSH_USERNAME and SSH_KEY');
  });

  it('names a missing key file', () => {
    const result = runCliOnce([], stdioEnv(sshd, { SSH_KEY: '/nonexistent/id_ed25519' }));
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('SSH key file not found: /nonexistent/id_ed25519');
  });

  it('says which key formats are supported when the key cannot be read', () => {
    const notKey = join(keys, 'not-a-key');
    writeFileSync(notKey, '-----BEGIN SOMETHING-----\nhello\n-----END SOMETHING-----\n');
    const result = runCliOnce([], stdioEnv(sshd, { SSH_KEY: notKey }));
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('could not be loaded');
    expect(result.stderr).toContain('Supported: OpenSSH');
    expect(result.stderr).toContain('Ed25519, ECDSA');
  });

  it('asks for SSH_KEY_PASSPHRASE for a protected key', () => {
    const result = runCliOnce([], stdioEnv(sshd, { SSH_KEY: keyPair('locked', 'open sesame') }));
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('SSH_KEY_PASSPHRASE');
  });

  it('reports failed authentication', () => {
    const result = runCliOnce([], stdioEnv(sshd, { SSH_KEY: keyPair('stranger') }));
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('Error [auth_failed]: Authentication as "mcpre-test"');
  });

  it('refuses an unknown host key, showing the fingerprint and the command to trust it', () => {
    const empty = join(keys, 'empty_known_hosts');
    writeFileSync(empty, '');
    const result = runCliOnce([], stdioEnv(sshd, { SSH_KNOWN_HOSTS: empty }));
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('Error [host_key_unknown]');
    expect(result.stderr).toContain(sshd.hostKeyFingerprint);
    expect(result.stderr).toContain(`printf '%s\\n' '[127.0.0.1]:${sshd.port} ssh-ed25519 `);
    expect(result.stderr).toContain('SSH_STRICT_HOST_KEY_CHECKING');
  });

  it('reports a host that cannot be reached', () => {
    const result = runCliOnce([], stdioEnv(sshd, { SSH_PORT: '1' }));
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('Error [host_unreachable]');
  });

  it('rejects an out-of-range setting with the allowed range', () => {
    const result = runCliOnce([], stdioEnv(sshd, { TIMEOUT: '0' }));
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('TIMEOUT must be a whole number from 1 to 300');
  });
});

describe('serving MCP over stdio', () => {
  it("offers the Worker's host tools (less the relay check), the seed's file tools, the job tools and the command check", async () => {
    const { tools } = await session.client.listTools();
    expect(tools.map((tool) => tool.name).sort()).toEqual([
      'ssh_cancel_job',
      'ssh_check_command',
      'ssh_download_file',
      'ssh_exec_command',
      'ssh_job_output',
      'ssh_job_status',
      'ssh_list_directory',
      'ssh_list_hosts',
      'ssh_list_jobs',
      'ssh_read_file',
      'ssh_start_job',
      'ssh_upload_file',
      'ssh_write_file',
    ]);
  });

  it('lists the host as reachable', async () => {
    const result = await call(session, 'ssh_list_hosts', {});
    expect(result.structuredContent).toMatchObject({ hosts: [{ name: '127.0.0.1', reachable: true }] });
  });

  it('runs a command with the seed formats', async () => {
    const text = await call(session, 'ssh_exec_command', { command: 'echo out; echo err >&2; exit 4' });
    expect(textOf(text)).toBe('STDOUT:\nout\n\n\nSTDERR:\nerr\n\n\nEXIT CODE: 4');
    const json = await call(session, 'ssh_exec_command', { command: 'printf hi', response_format: 'json' });
    expect(execStructuredOutput.parse(JSON.parse(textOf(json)))).toEqual(json.structuredContent);
  });

  it('shows control characters in command output as visible escapes, exact in json', async () => {
    const command = String.raw`printf 'a\033[2Jb\302\233c\n'`;
    expect(textOf(await call(session, 'ssh_exec_command', { command }))).toContain(String.raw`a\x1b[2Jb\x9bc`);
    expect(JSON.parse(textOf(await call(session, 'ssh_exec_command', { command, response_format: 'json' })))).toMatchObject({ stdout: 'a\u001b[2Jb\u009bc\n' });
  });

  it('applies CHARACTER_LIMIT and TIMEOUT from the environment', async () => {
    const limited = await connectStdio(stdioEnv(sshd, { CHARACTER_LIMIT: '100', TIMEOUT: '1' }));
    try {
      const output = await call(limited, 'ssh_exec_command', { command: 'head -c 5000 /dev/zero | tr "\\0" y' });
      expect(output.structuredContent).toMatchObject({ stdout_truncated: true, stdout_total_bytes: 5000 });
      expect((output.structuredContent as { stdout: string }).stdout).toHaveLength(100);
      const slow = await call(limited, 'ssh_exec_command', { command: 'sleep 37.401' });
      expect(slow.structuredContent).toMatchObject({ timed_out: true });
      expect(await gone('sleep 37.401')).toBe(true);
    } finally {
      await limited.close();
    }
  });

  it('stops the remote process when the client cancels', async () => {
    const controller = new AbortController();
    const pending = call(session, 'ssh_exec_command', { command: 'sleep 37.402', timeout: 60 }, controller.signal);
    const until = Date.now() + 5000;
    while (remoteProcesses('sleep 37.402', sshd.user).length === 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort();
    await expect(pending).rejects.toThrow();
    expect(await gone('sleep 37.402')).toBe(true);
  });

  it('logs to stderr only: stdout carries nothing but MCP messages', async () => {
    const lines = await rawStdioExchange(stdioEnv(sshd), [
      { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } },
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'ssh_exec_command', arguments: { command: 'echo to-stdout; echo to-stderr >&2' } } },
    ]);
    expect(lines.stdout.length).toBeGreaterThanOrEqual(2);
    for (const line of lines.stdout) expect(JSON.parse(line)).toMatchObject({ jsonrpc: '2.0' });
    expect(lines.stderr).toContain('"msg":"stdio server ready"');
  });

  it('works with a passphrase-protected key when SSH_KEY_PASSPHRASE is given', async () => {
    const locked = keyPair('locked-ok', 'correct horse');
    appendFileSync(join(sshd.dir, 'authorized_keys'), readFileSync(`${locked}.pub`));
    const protectedSession = await connectStdio(stdioEnv(sshd, { SSH_KEY: locked, SSH_KEY_PASSPHRASE: 'correct horse' }));
    try {
      const result = await call(protectedSession, 'ssh_exec_command', { command: 'echo unlocked' });
      expect(result.structuredContent).toMatchObject({ stdout: 'unlocked\n' });
    } finally {
      await protectedSession.close();
    }
  });

  it('serves several hosts from a config file', async () => {
    const config = join(keys, 'relay.config.json');
    writeFileSync(
      config,
      JSON.stringify({
        known_hosts: [sshd.knownHostsPath],
        hosts: [
          { name: 'alpha', address: '127.0.0.1', port: sshd.port, user: sshd.user, key_path: sshd.privateKeyPath, labels: { env: 'a' } },
          { name: 'beta', address: '127.0.0.1', port: sshd.port, user: sshd.user, password_env: 'BETA_PASSWORD' },
        ],
      }),
    );
    const multi = await connectStdio(stdioEnv(sshd, { HOST: '', BETA_PASSWORD: sshd.password }), ['--config', config]);
    try {
      const hosts = await call(multi, 'ssh_list_hosts', {});
      expect(hosts.structuredContent).toMatchObject({
        hosts: [
          { name: 'alpha', reachable: true, labels: { env: 'a' } },
          { name: 'beta', reachable: true },
        ],
      });
      expect(textOf(await call(multi, 'ssh_exec_command', { command: 'true' }))).toContain('Error [host_ambiguous]');
      expect((await call(multi, 'ssh_exec_command', { command: 'echo b', host: 'beta' })).structuredContent).toMatchObject({ stdout: 'b\n' });
    } finally {
      await multi.close();
    }
  });

  it('refuses commands and writes on a host the config makes read-only, and still reads there', async () => {
    const config = join(keys, 'read-only.config.json');
    writeFileSync(
      config,
      JSON.stringify({
        known_hosts: [sshd.knownHostsPath],
        hosts: [{ name: 'vault', address: '127.0.0.1', port: sshd.port, user: sshd.user, key_path: sshd.privateKeyPath, read_only: true }],
      }),
    );
    const marker = `read-only-marker-${Date.now()}`;
    const session = await connectStdio(stdioEnv(sshd, { HOST: '' }), ['--config', config]);
    try {
      const ran = await call(session, 'ssh_exec_command', { command: `touch ${marker}` });
      expect(textOf(ran)).toContain('Error [host_read_only]');
      expect(textOf(ran)).toContain("The relay's configuration makes vault read-only");
      expect(textOf(ran)).not.toMatch(/ask an admin/i);
      const wrote = await call(session, 'ssh_write_file', { path: marker, content: 'x' });
      expect(textOf(wrote)).toContain('Error [host_read_only]');
      expect(existsSync(join(sshd.home, marker))).toBe(false);
      expect((await call(session, 'ssh_list_directory', { path: '.' })).isError).toBeFalsy();
    } finally {
      await session.close();
    }
  });
});
