/**
 * Proxmox in the stdio mode, as the seed ran it: ENABLE_PROXMOX=true on the one host from the
 * seed's variables, with the pct/qm stand-in on the sshd host. The container tools, the seed's
 * container file tools (local path ⇄ container path), and the same id and quoting safety as the
 * full stack. Without ENABLE_PROXMOX the tools are not offered at all.
 */
import { chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CallToolResultSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installFakeProxmox, type FakeProxmox, leftoverPctTempDirs } from '../harness/fake-proxmox.ts';
import { remoteProcesses, startSshd, type TestSshd } from '../harness/sshd.ts';
import { textOf } from '../harness/stack.ts';
import { connectStdio, stdioEnv, type StdioSession } from '../harness/stdio.ts';

let pve: FakeProxmox;
let sshd: TestSshd;
let session: StdioSession;
let local: string;

beforeAll(async () => {
  pve = installFakeProxmox();
  pve.addContainer({ vmid: 101, name: 'web', status: 'running' });
  pve.addContainer({ vmid: 102, name: 'db', status: 'stopped' });
  const { uid, gid } = statSync(pve.containerPath(101, '/'));
  for (const dir of ['/etc', '/tmp']) {
    mkdirSync(pve.containerPath(101, dir), { recursive: true });
    chownSync(pve.containerPath(101, dir), uid, gid);
  }
  sshd = await startSshd({ extraConfig: pve.sshdConfigLines() });
  session = await connectStdio(stdioEnv(sshd, { ENABLE_PROXMOX: 'true', HOST_NAME: 'pve' }));
  local = mkdtempSync(join(tmpdir(), 'mre-pve-local-'));
}, 120_000);

afterAll(async () => {
  await session?.close();
  await sshd?.stop();
  pve?.remove();
  if (local) rmSync(local, { recursive: true, force: true });
});

async function call(name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return CallToolResultSchema.parse(await session.client.callTool({ name, arguments: args }));
}

describe('Proxmox in the stdio mode', () => {
  it('stops setsid and nohup children of a container command on timeout', async () => {
    // The seconds in a variable, so only the sleeps' command lines read "sleep 1009.5". The first sleep's parent
    // ends at once, so only its environment marker ties it to the run.
    const result = await call('proxmox_container_exec_command', {
      ctid: 101,
      command: 's=1009.5; (setsid sleep $s >/dev/null 2>&1 &); nohup sleep $s & sleep $s',
      timeout: 2,
    });
    expect(textOf(result)).toContain('TIMED OUT');
    const left = remoteProcesses('sleep 1009.5', sshd.user);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    expect(left).toEqual([]);
  });

  it('offers the container and VM tools, and the seed container file tools', async () => {
    const names = (await session.client.listTools()).tools.map((tool) => tool.name);
    for (const name of [
      'proxmox_list_containers',
      'proxmox_container_status',
      'proxmox_start_container',
      'proxmox_stop_container',
      'proxmox_shutdown_container',
      'proxmox_container_exec_command',
      'proxmox_upload_file_to_container',
      'proxmox_download_file_from_container',
      'proxmox_list_vms',
      'proxmox_vm_exec_command',
    ]) {
      expect(names).toContain(name);
    }
  });

  it('lists containers and runs a command in one', async () => {
    const listed = await call('proxmox_list_containers', { response_format: 'json' });
    expect(listed.structuredContent).toMatchObject({
      host: 'pve',
      containers: [
        { vmid: '101', name: 'web', lock: null },
        { vmid: '102', name: 'db' },
      ],
    });
    const ran = await call('proxmox_container_exec_command', { ctid: 101, command: 'echo "$((6*7))"', response_format: 'json' });
    expect(ran.structuredContent).toMatchObject({ exit_code: 0, stdout: '42\n' });
  });

  it('uploads a local file into a container with its permissions, and not over an existing one', async () => {
    const from = join(local, 'app.conf');
    writeFileSync(from, 'port=8080\n');
    const uploaded = await call('proxmox_upload_file_to_container', { ctid: 101, local_path: from, container_path: '/etc/app.conf', permissions: 600 });
    expect(uploaded.isError, textOf(uploaded)).toBeFalsy();
    expect(textOf(uploaded)).toContain('container 101 on pve');
    expect(readFileSync(pve.containerPath(101, '/etc/app.conf'), 'utf8')).toBe('port=8080\n');
    expect(statSync(pve.containerPath(101, '/etc/app.conf')).mode & 0o777).toBe(0o600);
    writeFileSync(from, 'port=9090\n');
    const again = await call('proxmox_upload_file_to_container', { ctid: 101, local_path: from, container_path: '/etc/app.conf' });
    expect(again.isError).toBe(true);
    expect(textOf(again)).toContain('already_exists');
    expect(readFileSync(pve.containerPath(101, '/etc/app.conf'), 'utf8')).toBe('port=8080\n');
  });

  it('downloads a file from a container to exactly the local path', async () => {
    const hostile = "/tmp/a b'c$(id)`id`;x\n-y";
    writeFileSync(pve.containerPath(101, hostile), 'from the container\n');
    const to = join(local, 'pulled.txt');
    const downloaded = await call('proxmox_download_file_from_container', { ctid: 101, container_path: hostile, local_path: to });
    expect(downloaded.isError, textOf(downloaded)).toBeFalsy();
    expect(readFileSync(to, 'utf8')).toBe('from the container\n');
    expect(await leftoverPctTempDirs()).toEqual([]);
  });

  it('says what pct said when the container is stopped', async () => {
    const to = join(local, 'never.txt');
    const result = await call('proxmox_download_file_from_container', { ctid: 102, container_path: '/etc/hostname', local_path: to });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/guest_error|not running/);
  });

  it.each(['100;reboot', '099', '1e3', '-1', ' 101', '101\n'])('refuses ctid %j with nothing sent to the host', async (ctid) => {
    const before = pve.readCalls().length;
    for (const [tool, args] of [
      ['proxmox_container_status', {}],
      ['proxmox_container_exec_command', { command: 'reboot' }],
      ['proxmox_upload_file_to_container', { local_path: join(local, 'app.conf'), container_path: '/etc/x' }],
      ['proxmox_download_file_from_container', { container_path: '/etc/x', local_path: join(local, 'x') }],
    ] as const) {
      const result = await call(tool, { ctid, ...args });
      expect(result.isError, `${tool} ${JSON.stringify(ctid)}`).toBe(true);
    }
    expect(pve.readCalls().slice(before)).toEqual([]);
  });

  it('refuses a relative container path before anything runs', async () => {
    const result = await call('proxmox_download_file_from_container', { ctid: 101, container_path: 'etc/hostname', local_path: join(local, 'rel') });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('must be absolute');
  });
});

describe('without ENABLE_PROXMOX', () => {
  it('offers no Proxmox tool', async () => {
    const plain = await connectStdio(stdioEnv(sshd));
    try {
      const names = (await plain.client.listTools()).tools.map((tool) => tool.name);
      expect(names.filter((name) => name.startsWith('proxmox_'))).toEqual([]);
      expect(names).toContain('ssh_exec_command');
    } finally {
      await plain.close();
    }
  });
});
