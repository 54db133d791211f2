/**
 * Writes never loosen permissions: with no `permissions`, a new file gets the SSH user's default
 * (0666 less the umask, as a file made by a command would) and a replaced file keeps its mode.
 * The test sshd runs with umask 027, which its SFTP server and sessions inherit.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CallToolResultSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installFakeProxmox, type FakeProxmox } from '../harness/fake-proxmox.ts';
import { startSshd, type TestSshd } from '../harness/sshd.ts';
import { connectStdio, stdioEnv, type StdioSession } from '../harness/stdio.ts';

let pve: FakeProxmox;
let sshd: TestSshd;
let session: StdioSession;
let local: string;
const dir = `/home/mcpre-test/perm-${process.pid}`;

beforeAll(async () => {
  pve = installFakeProxmox();
  pve.addContainer({ vmid: 101, name: 'web', status: 'running' });
  sshd = await startSshd({ umask: 0o027, extraConfig: pve.sshdConfigLines() });
  session = await connectStdio(stdioEnv(sshd, { ENABLE_PROXMOX: 'true', HOST_NAME: 'pve' }));
  local = mkdtempSync(join(tmpdir(), 'mre-perm-'));
  await call('ssh_exec_command', { command: `rm -rf ${dir}; mkdir ${dir}` });
});

afterAll(async () => {
  await call('ssh_exec_command', { command: `rm -rf ${dir}` }).catch(() => undefined);
  await session?.close();
  await sshd?.stop();
  pve?.remove();
  rmSync(local, { recursive: true, force: true });
});

async function call(name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return CallToolResultSchema.parse(await session.client.callTool({ name, arguments: args }, CallToolResultSchema));
}

const modeOf = (path: string): number => statSync(path).mode & 0o7777;

describe('permissions of written files', () => {
  it('gives a new file the same mode a command would (umask 027: 0640)', async () => {
    const made = await call('ssh_exec_command', { command: `umask; touch ${dir}/by-command`, response_format: 'json' });
    expect(made.structuredContent).toMatchObject({ stdout: '0027\n' });
    expect(modeOf(`${dir}/by-command`)).toBe(0o640);
    const written = await call('ssh_write_file', { path: `${dir}/new.txt`, content: 'x' });
    expect(written.isError).toBeFalsy();
    expect(modeOf(`${dir}/new.txt`)).toBe(0o640);
  });

  it('gives a new uploaded file the umask default too', async () => {
    writeFileSync(join(local, 'up.txt'), 'up');
    const uploaded = await call('ssh_upload_file', { local_path: join(local, 'up.txt'), remote_path: `${dir}/up.txt` });
    expect(uploaded.isError).toBeFalsy();
    expect(modeOf(`${dir}/up.txt`)).toBe(0o640);
  });

  it('keeps the mode of a replaced 0600 file', async () => {
    await call('ssh_write_file', { path: `${dir}/secret`, content: 'one', permissions: 600 });
    expect(modeOf(`${dir}/secret`)).toBe(0o600);
    const replaced = await call('ssh_write_file', { path: `${dir}/secret`, content: 'two', overwrite: true });
    expect(replaced.isError).toBeFalsy();
    expect(modeOf(`${dir}/secret`)).toBe(0o600);
    writeFileSync(join(local, 'secret'), 'three');
    await call('ssh_upload_file', { local_path: join(local, 'secret'), remote_path: `${dir}/secret`, overwrite: true });
    expect(modeOf(`${dir}/secret`)).toBe(0o600);
  });

  it('refuses to replace a file whose owner it cannot keep, and leaves it as it was', async () => {
    // Written by this (root) test process: owned by root, in a directory the SSH user may write.
    writeFileSync(`${dir}/rootfile`, 'root content', { mode: 0o644 });
    const replaced = await call('ssh_write_file', { path: `${dir}/rootfile`, content: 'user content', overwrite: true });
    expect(replaced.isError).toBe(true);
    expect(JSON.stringify(replaced.content)).toContain('permission_denied');
    expect(readFileSync(`${dir}/rootfile`, 'utf8')).toBe('root content');
    expect(statSync(`${dir}/rootfile`).uid).toBe(0);
    expect(readdirSync(dir).filter((name) => name.includes('.mre-'))).toEqual([]);
  });

  it('gives a new file in a container the umask default and keeps the mode of a replaced one', async () => {
    const created = await call('ssh_write_file', { ctid: 101, path: '/new-in-ct.txt', content: 'x' });
    expect(created.isError).toBeFalsy();
    expect(modeOf(pve.containerPath(101, '/new-in-ct.txt'))).toBe(0o640);
    await call('ssh_write_file', { ctid: 101, path: '/secret-in-ct', content: 'one', permissions: 600 });
    const replaced = await call('ssh_write_file', { ctid: 101, path: '/secret-in-ct', content: 'two', overwrite: true });
    expect(replaced.isError).toBeFalsy();
    expect(modeOf(pve.containerPath(101, '/secret-in-ct'))).toBe(0o600);
  });

  it('still applies explicit permissions, whatever the umask', async () => {
    await call('ssh_write_file', { path: `${dir}/open.txt`, content: 'x', permissions: 644 });
    expect(modeOf(`${dir}/open.txt`)).toBe(0o644);
  });
});
