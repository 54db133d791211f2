/**
 * Proxmox VE through the whole local stack (wrangler dev, the real relay, the real sshd), with the
 * pct/qm stand-in on the sshd host: every container and VM tool, files inside a container through
 * the file tools and transfer links, and the safety cases: ids that are not plain digits never
 * reach the host, and commands and paths full of shell syntax arrive literally.
 */
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi } from '../harness/admin-api.ts';
import { connectMcpClient, type ConnectedClient } from '../harness/mcp-client.ts';
import { installFakeProxmox, type FakeProxmox, leftoverPctTempDirs } from '../harness/fake-proxmox.ts';
import { startStack, textOf, type Stack } from '../harness/stack.ts';

let stack: Stack;
let pve: FakeProxmox;

/** A path with every character that would mean something to a shell. */
const NASTY_PATH = "/tmp/a b'c$(id)`id`;x\n-y";
const NASTY_COMMAND = `printf '%s|' "a b" 'c"d' '$(id)' '\`id\`' ';' "-n"; echo`;

async function call(name: string, args: Record<string, unknown>): Promise<{ text: string; isError: boolean; structured: Record<string, unknown> | undefined }> {
  const result = await stack.call(name, args);
  return { text: textOf(result), isError: Boolean(result.isError), structured: result.structuredContent };
}

function callsSince(before: number): string[][] {
  return pve.readCalls().slice(before);
}

beforeAll(async () => {
  pve = installFakeProxmox();
  pve.addContainer({ vmid: 101, name: 'web', status: 'running' });
  pve.addContainer({ vmid: 102, name: 'db', status: 'stopped', lock: 'backup' });
  pve.addContainer({ vmid: 103, name: 'spare', status: 'stopped' });
  pve.addVm({ vmid: 200, name: 'build', status: 'running', agent: 'running' });
  pve.addVm({ vmid: 201, name: 'plain-vm', status: 'running', agent: 'none' });
  // The directories every container has, owned like its rootfs.
  const rootfs = pve.containerPath(101, '/');
  const { uid, gid } = statSync(rootfs);
  for (const dir of ['/etc', '/tmp', '/srv', '/root']) {
    mkdirSync(pve.containerPath(101, dir), { recursive: true });
    chownSync(pve.containerPath(101, dir), uid, gid);
  }
  stack = await startStack({
    sshd: { extraConfig: pve.sshdConfigLines() },
    relay: (sshd) => ({
      configFile: {
        relay_id: 'pve-relay',
        known_hosts: [sshd.knownHostsPath],
        hosts: [
          { name: 'pve', address: '127.0.0.1', port: sshd.port, user: sshd.user, key_path: sshd.privateKeyPath, proxmox: true },
          { name: 'plain', address: '127.0.0.1', port: sshd.port, user: sshd.user, key_path: sshd.privateKeyPath },
        ],
      },
    }),
  });
}, 240_000);

afterAll(async () => {
  await stack?.stop();
  pve?.remove();
});

describe('containers', () => {
  it('lists containers with the lock kept out of the name, as text and as JSON', async () => {
    const json = await call('proxmox_list_containers', { host: 'pve', response_format: 'json' });
    expect(json.isError, json.text).toBe(false);
    expect(json.structured?.containers, json.text).toEqual([
      { vmid: '101', status: 'running', lock: null, name: 'web' },
      { vmid: '102', status: 'stopped', lock: 'backup', name: 'db' },
      { vmid: '103', status: 'stopped', lock: null, name: 'spare' },
    ]);
    const text = await call('proxmox_list_containers', { host: 'pve' });
    expect(text.text).toMatch(/^102\s+stopped\s+backup\s+db$/m);
  });

  it('reports status, with the verbose fields when asked', async () => {
    const plain = await call('proxmox_container_status', { host: 'pve', ctid: 101 });
    expect(plain.text).toContain('container 101 on pve: running');
    const verbose = await call('proxmox_container_status', { host: 'pve', ctid: '101', verbose: true, response_format: 'json' });
    expect(verbose.structured).toMatchObject({ id: '101', status: 'running', fields: { name: 'web' } });
  });

  it('starts, shuts down and stops a container, and says so only when it happened', async () => {
    const started = await call('proxmox_start_container', { host: 'pve', ctid: 103 });
    expect(started.isError, started.text).toBe(false);
    expect(started.text).toContain('started; it is now running');
    const again = await call('proxmox_start_container', { host: 'pve', ctid: 103 });
    expect(again.isError).toBe(true);
    expect(again.text).toMatch(/pct start 103 on pve failed with exit code \d+/);
    const shut = await call('proxmox_shutdown_container', { host: 'pve', ctid: 103, timeout: 5 });
    expect(shut.isError, shut.text).toBe(false);
    expect(shut.text).toContain('shut down cleanly; it is now stopped');
    await call('proxmox_start_container', { host: 'pve', ctid: 103 });
    const stopped = await call('proxmox_stop_container', { host: 'pve', ctid: 103 });
    expect(stopped.text).toContain('hard stop');
    expect(stopped.structured).toMatchObject({ status: 'stopped', exit_code: 0 });
  });

  it("refuses to start a locked container with pct's own words", async () => {
    const locked = await call('proxmox_start_container', { host: 'pve', ctid: 102 });
    expect(locked.isError).toBe(true);
    expect(locked.text).toContain('locked (backup)');
  });

  it('runs a command inside a container with its exit code and output', async () => {
    const result = await call('proxmox_container_exec_command', {
      host: 'pve',
      ctid: 101,
      command: 'echo inside; echo oops >&2; exit 3',
      response_format: 'json',
    });
    expect(result.structured).toMatchObject({ exit_code: 3, stdout: 'inside\n', stderr: 'oops\n', timed_out: false });
  });

  it('sends progress carrying the latest output line of a command inside a container', async () => {
    const session = await connectMcpClient(stack.worker.mcpUrl, { username: stack.worker.adminUser, password: stack.worker.adminPassword });
    const seen: string[] = [];
    try {
      const result = await session.client.callTool(
        { name: 'proxmox_container_exec_command', arguments: { host: 'pve', ctid: 101, command: "printf 'ct step 1\\n'; sleep 3.5" } },
        undefined,
        { onprogress: (progress) => seen.push(progress.message ?? '') },
      );
      expect(result.isError, textOf(result)).toBeFalsy();
    } finally {
      await session.close();
    }
    expect(seen.length, JSON.stringify(seen)).toBeGreaterThan(0);
    expect(
      seen.every((message) => /^running for \d+ s; latest stdout: ct step 1$/.test(message)),
      JSON.stringify(seen),
    ).toBe(true);
  });

  it('passes the command as one literal argument to bash -c inside the container', async () => {
    const before = pve.readCalls().length;
    const result = await call('proxmox_container_exec_command', { host: 'pve', ctid: 101, command: NASTY_COMMAND, response_format: 'json' });
    expect(result.structured).toMatchObject({ exit_code: 0, stdout: `a b|c"d|$(id)|\`id\`|;|-n|\n` });
    const calls = callsSince(before);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.slice(0, 6)).toEqual(['pct', 'exec', '101', '--', 'bash', '-c']);
    expect(calls[0]?.[6]).toContain(NASTY_COMMAND.replaceAll("'", "'\\''"));
  });

  it("refuses a stopped container with pct's message", async () => {
    const result = await call('proxmox_container_exec_command', { host: 'pve', ctid: 102, command: 'true', response_format: 'json' });
    expect(result.structured?.stderr).toContain("container '102' not running!");
    expect(result.structured?.exit_code).not.toBe(0);
  });

  it('stops the command inside the container when the timeout passes', async () => {
    const marker = `${pve.containerPath(101, '/')}pid-${Date.now()}`;
    const result = await call('proxmox_container_exec_command', {
      host: 'pve',
      ctid: 101,
      command: `echo $$ > ${marker}; sleep 60`,
      timeout: 2,
      response_format: 'json',
    });
    expect(result.isError).toBe(true);
    expect(result.structured).toMatchObject({ timed_out: true });
    const pid = Number(readFileSync(marker, 'utf8').trim());
    expect(pid).toBeGreaterThan(1);
    // Gone, or a zombie nobody reaped yet (pct, its parent, was stopped first): either way not running.
    const running = (): boolean => {
      try {
        return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    let alive = running();
    for (let i = 0; i < 30 && alive; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      alive = running();
    }
    expect(alive).toBe(false);
  });
});

describe('ids and hosts', () => {
  it.each(['100;reboot', '099', '1e3', '-1', ' 101', '101\n', 99])('refuses ctid %j before anything reaches the host', async (ctid) => {
    const before = pve.readCalls().length;
    for (const tool of ['proxmox_container_status', 'proxmox_start_container', 'proxmox_stop_container']) {
      const result = await call(tool, { host: 'pve', ctid });
      expect(result.isError).toBe(true);
      expect(result.text).toMatch(/ctid|100 to 999999999/);
    }
    const exec = await call('proxmox_container_exec_command', { host: 'pve', ctid, command: 'reboot' });
    expect(exec.isError).toBe(true);
    const read = await call('ssh_read_file', { host: 'pve', ctid, path: '/etc/hostname' });
    expect(read.isError).toBe(true);
    expect(callsSince(before)).toEqual([]);
  });

  it('refuses Proxmox work on a host that is not marked as Proxmox', async () => {
    const before = pve.readCalls().length;
    const result = await call('proxmox_list_containers', { host: 'plain' });
    expect(result.isError).toBe(true);
    expect(result.text).toContain('not marked as a Proxmox VE host');
    expect(callsSince(before)).toEqual([]);
  });
});

describe('files inside a container', () => {
  it('writes a file with its permissions, and will not replace it without overwrite', async () => {
    const written = await call('ssh_write_file', { host: 'pve', ctid: 101, path: '/etc/app.conf', content: 'key=value\n', permissions: '640' });
    expect(written.isError, written.text).toBe(false);
    const onHost = pve.containerPath(101, '/etc/app.conf');
    expect(readFileSync(onHost, 'utf8')).toBe('key=value\n');
    expect(statSync(onHost).mode & 0o777).toBe(0o640);
    const again = await call('ssh_write_file', { host: 'pve', ctid: 101, path: '/etc/app.conf', content: 'other\n' });
    expect(again.isError).toBe(true);
    expect(again.text).toContain('already_exists');
    expect(readFileSync(onHost, 'utf8')).toBe('key=value\n');
    const replaced = await call('ssh_write_file', { host: 'pve', ctid: 101, path: '/etc/app.conf', content: 'new\n', overwrite: true });
    expect(replaced.structured).toMatchObject({ replaced: true, mode: '0640' });
    expect(readFileSync(onHost, 'utf8')).toBe('new\n');
    // A replaced file keeps its mode, as on a host.
    expect(statSync(onHost).mode & 0o777).toBe(0o640);
  });

  it('reads a file back from the container', async () => {
    writeFileSync(pve.containerPath(101, '/etc/motd'), 'hello from ct 101\n');
    const read = await call('ssh_read_file', { host: 'pve', ctid: 101, path: '/etc/motd' });
    expect(read.isError, read.text).toBe(false);
    expect(read.text).toContain('hello from ct 101');
  });

  it('puts a file at exactly a path full of shell syntax, and runs nothing on the host', async () => {
    const before = pve.readCalls().length;
    const written = await call('ssh_write_file', { host: 'pve', ctid: 101, path: NASTY_PATH, content: 'literal\n' });
    expect(written.isError, written.text).toBe(false);
    expect(readFileSync(pve.containerPath(101, NASTY_PATH), 'utf8')).toBe('literal\n');
    // Only pct itself was run, each time with the path as one argument.
    const calls = callsSince(before);
    expect(calls.every((argv) => argv[0] === 'pct')).toBe(true);
    expect(calls.some((argv) => argv[1] === 'push' && argv[4]?.startsWith("/tmp/.a b'c$(id)`id`;x\n-y.mre-"))).toBe(true);
    expect(existsSync(pve.containerPath(101, '/tmp/uid=0(root)'))).toBe(false);
  });

  it('leaves no temporary file behind on the host or in the container', async () => {
    expect(await leftoverPctTempDirs()).toEqual([]);
    expect(readdirSync(pve.containerPath(101, '/etc')).filter((name) => name.includes('.mre-'))).toEqual([]);
    expect(readdirSync(pve.containerPath(101, '/tmp')).filter((name) => name.includes('.mre-'))).toEqual([]);
  });

  it('moves a file in and out through one-time links', async () => {
    const upload = await call('ssh_request_upload', { host: 'pve', ctid: 101, path: '/srv/upload.bin', permissions: 600 });
    expect(upload.isError, upload.text).toBe(false);
    const bytes = new Uint8Array(300_000).map((_, index) => (index * 7) % 251);
    const put = await fetch(String(upload.structured?.url), { method: 'PUT', body: bytes, headers: { 'Content-Length': String(bytes.length) } });
    expect(put.status, await put.clone().text()).toBe(201);
    const onHost = pve.containerPath(101, '/srv/upload.bin');
    expect(new Uint8Array(readFileSync(onHost))).toEqual(bytes);
    expect(statSync(onHost).mode & 0o777).toBe(0o600);
    const download = await call('ssh_request_download', { host: 'pve', ctid: 101, path: '/srv/upload.bin' });
    const got = await fetch(String(download.structured?.url));
    expect(got.status).toBe(200);
    expect(new Uint8Array(await got.arrayBuffer())).toEqual(bytes);
  });

  it('audits container work with the container named', async () => {
    const audit = await adminApi(stack.worker).get('audit?host=pve&limit=200');
    const targets = (audit.body.entries as Array<{ tool: string; target: string | null }>).map((entry) => `${entry.tool} ${entry.target ?? ''}`);
    expect(targets).toContain('ssh_write_file ct 101:/etc/app.conf');
    expect(targets.some((target) => target.startsWith('proxmox_container_exec_command ct 101: echo inside'))).toBe(true);
    expect(targets).toContain('proxmox_start_container ct 103');
  });
});

describe('symbolic links inside a container', () => {
  it('will not write "through" a link to a directory, and sizes a linked file by its target', async () => {
    const { uid, gid } = statSync(pve.containerPath(101, '/srv'));
    mkdirSync(pve.containerPath(101, '/srv/realdir'), { recursive: true });
    chownSync(pve.containerPath(101, '/srv/realdir'), uid, gid);
    symlinkSync('realdir', pve.containerPath(101, '/srv/linkdir'));
    const write = await call('ssh_write_file', { host: 'pve', ctid: 101, path: '/srv/linkdir', content: 'x', overwrite: true });
    expect(write.isError).toBe(true);
    expect(write.text).toContain('path_is_directory');
    expect(readdirSync(pve.containerPath(101, '/srv/realdir'))).toEqual([]);

    writeFileSync(pve.containerPath(101, '/srv/big.bin'), Buffer.alloc(11 * 1024 * 1024));
    symlinkSync('big.bin', pve.containerPath(101, '/srv/big-link'));
    const download = await call('ssh_request_download', { host: 'pve', ctid: 101, path: '/srv/big-link' });
    expect(download.isError).toBe(true);
    expect(download.text).toContain('file_too_large');
  });
});

describe('background jobs in guests, through the Worker', () => {
  async function waitEnded(jobId: string): Promise<Record<string, unknown> | undefined> {
    for (let i = 0; i < 100; i += 1) {
      const status = await call('ssh_job_status', { job_id: jobId, response_format: 'json' });
      if (status.structured?.state !== 'running') return status.structured;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    return undefined;
  }

  it('starts a job in a container (ctid) and in a VM (vmid), with its files inside the guest and its output byte-exact', async () => {
    const command = "printf 'caf\\303\\251\\n'; echo warn >&2; exit 3";
    const inCt = await call('ssh_start_job', { host: 'pve', ctid: 101, command });
    expect(inCt.isError, inCt.text).toBe(false);
    expect(inCt.structured?.guest).toEqual({ kind: 'lxc', id: '101' });
    const inVm = await call('ssh_start_job', { host: 'pve', vmid: 200, command });
    expect(inVm.isError, inVm.text).toBe(false);
    expect(inVm.structured?.guest).toEqual({ kind: 'qemu', id: '200' });
    for (const [started, home] of [
      [inCt, pve.containerPath(101, '/root')],
      [inVm, `${pve.vmGuestDir(200)}/root`],
    ] as const) {
      const jobId = String(started.structured?.job_id);
      expect(await waitEnded(jobId)).toMatchObject({ state: 'exited', exit_code: 3, stderr_tail: 'warn\n' });
      const page = await call('ssh_job_output', { job_id: jobId, response_format: 'json' });
      expect(page.structured).toMatchObject({ data: 'café\n', encoding: 'utf-8', complete: true });
      expect(existsSync(`${home}/.mcp-remote-exec/jobs/${jobId}/out`)).toBe(true);
    }
    const text = await call('ssh_job_status', { job_id: String(inCt.structured?.job_id) });
    expect(text.text).toContain('container 101 on pve');
  });
});

describe('VMs', () => {
  it('lists VMs and reports status', async () => {
    const listed = await call('proxmox_list_vms', { host: 'pve', response_format: 'json' });
    expect(listed.isError, listed.text).toBe(false);
    expect((listed.structured?.vms as Array<{ vmid: string; name: string; status: string }>).map((vm) => `${vm.vmid}:${vm.name}:${vm.status}`)).toEqual([
      '200:build:running',
      '201:plain-vm:running',
    ]);
    const status = await call('proxmox_vm_status', { host: 'pve', vmid: 200 });
    expect(status.text).toContain('VM 200 on pve: running');
  });

  it('runs a command through the guest agent with its exit code and output', async () => {
    const result = await call('proxmox_vm_exec_command', { host: 'pve', vmid: 200, command: 'echo from-vm; exit 4', response_format: 'json' });
    expect(result.structured).toMatchObject({ exit_code: 4, stdout: 'from-vm\n', timed_out: false });
  });

  it("says so when the VM has no guest agent, in qm's words", async () => {
    const result = await call('proxmox_vm_exec_command', { host: 'pve', vmid: 201, command: 'true', response_format: 'json' });
    expect(String(result.structured?.stderr)).toMatch(/guest agent/i);
    expect(result.structured?.exit_code).not.toBe(0);
  });

  it('shuts a VM down and starts it again', async () => {
    const shut = await call('proxmox_shutdown_vm', { host: 'pve', vmid: 201, timeout: 5 });
    expect(shut.isError, shut.text).toBe(false);
    expect(shut.structured).toMatchObject({ status: 'stopped' });
    const started = await call('proxmox_start_vm', { host: 'pve', vmid: 201 });
    expect(started.structured).toMatchObject({ status: 'running' });
  });
});

describe('who is offered the Proxmox tools', () => {
  it('offers them only to someone who can see a Proxmox host, and gates them by role', async () => {
    const admin = adminApi(stack.worker);
    const passwords: Record<string, string> = {};
    for (const username of ['plainviewer', 'pveviewer']) {
      const added = await admin.post('users', { username });
      expect(added.status, added.text).toBe(201);
      passwords[username] = String(added.body.password);
    }
    const saved = await admin.put('policy', {
      version: 1,
      grants: [
        { subjects: ['user:plainviewer'], role: 'viewer', hosts: ['plain'] },
        { subjects: ['user:pveviewer'], role: 'viewer', hosts: ['pve'] },
      ],
    });
    expect(saved.status, saved.text).toBe(200);
    const sessions: ConnectedClient[] = [];
    try {
      const plain = await connectMcpClient(stack.worker.mcpUrl, { username: 'plainviewer', password: passwords.plainviewer ?? '' });
      sessions.push(plain);
      expect((await plain.client.listTools()).tools.map((tool) => tool.name).filter((name) => name.startsWith('proxmox_'))).toEqual([]);

      const viewer = await connectMcpClient(stack.worker.mcpUrl, { username: 'pveviewer', password: passwords.pveviewer ?? '' });
      sessions.push(viewer);
      const names = (await viewer.client.listTools()).tools.map((tool) => tool.name);
      expect(names).toContain('proxmox_list_containers');
      const listed = await viewer.client.callTool({ name: 'proxmox_list_containers', arguments: {} });
      expect(listed.isError, textOf(listed as never)).toBeFalsy();
      const before = pve.readCalls().length;
      const start = await viewer.client.callTool({ name: 'proxmox_start_container', arguments: { ctid: 103 } });
      expect(start.isError).toBe(true);
      expect(textOf(start as never)).toContain('needs operator');
      const exec = await viewer.client.callTool({ name: 'proxmox_container_exec_command', arguments: { ctid: 101, command: 'id' } });
      expect(exec.isError).toBe(true);
      expect(pve.readCalls().slice(before)).toEqual([]);
    } finally {
      for (const session of sessions) await session.close().catch(() => undefined);
    }
  });
});
