/**
 * A relay started on a fresh machine (empty HOME: no ~/.ssh, no ~/.local) for a host whose key it
 * does not trust yet: it says so once at start with the key's fingerprint and a command to paste;
 * running that command makes the next call work without a restart, and failing calls before that
 * do not repeat the same log line.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMcpClient, type ConnectedClient } from '../harness/mcp-client.ts';
import { freePort } from '../harness/ports.ts';
import { startManaged } from '../harness/processes.ts';
import { seedHostEnv, startRelay, type TestRelay } from '../harness/relay.ts';
import { startSshd, type TestSshd } from '../harness/sshd.ts';
import { textOf } from '../harness/stack.ts';
import { offlineWranglerEnv, PROJECT_ROOT, startWorker, type TestWorker } from '../harness/worker.ts';

let sshd: TestSshd;
let worker: TestWorker;
let relay: TestRelay;
let mcp: ConnectedClient;

beforeAll(async () => {
  sshd = await startSshd();
  worker = await startWorker();
  // No SSH_KNOWN_HOSTS and no state dir setting: the relay reads HOME/.ssh/known_hosts and its own
  // HOME/.local/state/mcp-remote-exec/known_hosts, neither of which exists.
  relay = await startRelay(worker, sshd, { env: { SSH_KNOWN_HOSTS: '', MCP_REMOTE_EXEC_STATE_DIR: '' } });
  mcp = await connectMcpClient(worker.mcpUrl, { username: worker.adminUser, password: worker.adminPassword });
}, 180_000);

afterAll(async () => {
  await mcp?.close().catch(() => undefined);
  await relay?.stop();
  await worker?.stop();
  await sshd?.stop();
});

async function exec(command: string): Promise<string> {
  return textOf(CallToolResultSchema.parse(await mcp.client.callTool({ name: 'ssh_exec_command', arguments: { command } })));
}

function count(text: string, pattern: RegExp): number {
  return (text.match(pattern) ?? []).length;
}

describe('a host key that is not trusted yet, on a fresh machine', () => {
  const ownKnownHosts = (): string => join(relay.dir, '.local', 'state', 'mcp-remote-exec', 'known_hosts');
  let command = '';

  it('says so at start with the host, the SHA256 fingerprint ssh-keygen shows and a command to trust it', async () => {
    const notice = await relay.process.waitFor(/Host "testhost" \(127\.0\.0\.1:\d+\) offers a ssh-ed25519 host key[^\n]*\n(?:[^\n]*\n){4}/, 30_000);
    const fingerprint = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(sshd.dir, 'ssh_host_ed25519_key.pub')], { encoding: 'utf8' }).split(
      /\s+/,
    )[1];
    expect(fingerprint).toMatch(/^SHA256:/);
    expect(notice).toContain(`Fingerprint: ${fingerprint}`);
    expect(notice).toContain('out of band');
    command = /^ {4}(mkdir -p .*)$/m.exec(notice)?.[1] ?? '';
    const [keyType, keyBase64] = readFileSync(join(sshd.dir, 'ssh_host_ed25519_key.pub'), 'utf8').split(' ');
    const hostLine = `[127.0.0.1]:${sshd.port} ${keyType} ${keyBase64}`;
    // The exact file the relay reads, whose folder a fresh machine does not have yet.
    expect(command).toBe(`mkdir -p ${join(relay.dir, '.local', 'state', 'mcp-remote-exec')} && printf '%s\\n' '${hostLine}' >> ${ownKnownHosts()}`);
    expect(existsSync(join(relay.dir, '.local'))).toBe(false);
  });

  it('fails each call with host_key_unknown but logs the failure once, with the fingerprint', async () => {
    const mark = relay.process.mark();
    for (let i = 0; i < 4; i++) expect(await exec('echo never')).toContain('Error [host_key_unknown]');
    const output = relay.process.output();
    // The start-up check logged it; the four calls add no warning line, and the notice is not repeated.
    expect(count(output, /"level":"warn","msg":"ssh connect failed"/g)).toBe(1);
    expect(output).toMatch(
      new RegExp(`"msg":"ssh connect failed","host":"testhost","code":"host_key_unknown","fingerprint":"${sshd.hostKeyFingerprint.replace(/[+/]/g, '\\$&')}"`),
    );
    expect(count(output, /does not trust yet/g)).toBe(1);
    expect(count(relay.process.outputSince(mark), /"level":"warn"/g)).toBe(0);
  });

  it('works on the next call once the printed command has run, without a restart', async () => {
    execFileSync('sh', ['-c', command]);
    expect(await exec('echo trusted-now')).toContain('trusted-now');
    expect(relay.process.child.exitCode).toBe(null);
    expect(count(relay.process.output(), /"msg":"relay starting"/g)).toBe(1);
  });
});

describe('npm start with a host key that is not trusted yet', () => {
  it("shows the notice once among its [relay] lines, with the fingerprint and the command for the relay's own known_hosts", async () => {
    const home = mkdtempSync(join(tmpdir(), 'mre-start-home-'));
    const local = startManaged(process.execPath, [join(PROJECT_ROOT, 'scripts', 'start-local.ts')], {
      cwd: PROJECT_ROOT,
      env: {
        ...offlineWranglerEnv(),
        HOME: home,
        PORT: String(await freePort()),
        LOCAL_STATE_DIR: join(home, 'local'),
        I_ACCEPT_RISKS: 'true',
        ...seedHostEnv(sshd),
        SSH_KNOWN_HOSTS: '',
        MCP_REMOTE_EXEC_STATE_DIR: '',
        XDG_STATE_HOME: '',
      },
    });
    try {
      await local.waitFor(/\[relay\] .*"msg":"connected to hub"/, 120_000);
      const notice = await local.waitFor(/\[relay\] Host "testhost" \(127\.0\.0\.1:\d+\) offers a ssh-ed25519 host key[^\n]*\n(?:[^\n]*\n){4}/, 30_000);
      expect(notice).toContain(`[relay]   Fingerprint: ${sshd.hostKeyFingerprint}`);
      const stateDir = join(home, '.local', 'state', 'mcp-remote-exec');
      expect(notice).toMatch(
        new RegExp(
          `\\[relay\\] {5}mkdir -p ${stateDir} && printf '%s\\\\n' '\\[127\\.0\\.0\\.1\\]:${sshd.port} ssh-ed25519 [A-Za-z0-9+/=]+' >> ${stateDir}/known_hosts\n`,
        ),
      );
      expect(count(local.output(), /does not trust yet/g)).toBe(1);
    } finally {
      await local.stop();
      rmSync(home, { recursive: true, force: true });
    }
  });
});
