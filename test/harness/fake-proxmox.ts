/**
 * Installs the stand-in for Proxmox VE's `pct` and `qm` (test/fixtures/proxmox) for the test sshd.
 *
 * Real PVE cannot run here, so these bash scripts reproduce the real commands' output formats,
 * messages, exit codes and argument rules (sources are named in test/fixtures/proxmox/lib.sh).
 * They run on the sshd host as the test account: point the sshd's PATH at `binDir` with
 * `sshdConfigLines()` (passed to `startSshd({ extraConfig })`).
 *
 * Containers and VMs are directories under `root` (layout in lib.sh). `pct exec` runs commands on
 * this host in a new session with the container's rootfs as working directory and HOME the
 * container's /root mapped into it (`containerPath(vmid, '/root')`); for file utilities (test,
 * stat, mv, ln, rm, mkdir, cat, ...) absolute paths are mapped into the rootfs, as push and pull
 * map theirs. Scripts run through `bash -c` / `sh -c` see the host's filesystem apart from ~ and
 * relative paths, so a check on "a file in the container" from a test belongs at
 * `containerPath(vmid, path)`. `qm guest exec` does the same with `vmGuestDir(vmid)` as the
 * guest's / (HOME = its root/). What lives under ~ there (background jobs) is therefore inside the
 * guest, as on real PVE; the processes themselves run on this host, in no namespace of their own.
 *
 * Needs root, to hand the guests' state to the test account. The usual order is: install (no
 * sshd yet), then `startSshd({ extraConfig: fake.sshdConfigLines() })`; the account is created here
 * when it does not exist yet, the same way test/harness/sshd.ts creates it (which then sets its
 * password).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TEST_USER } from './sshd.ts';
import type { TestSshd } from './sshd.ts';

export type GuestStatus = 'running' | 'stopped';

export interface FakeContainer {
  vmid: number;
  /** The container's hostname, shown as its name by `pct list`. */
  name: string;
  status?: GuestStatus;
  /** A PVE lock such as 'backup', 'mounted' or 'migrate'. */
  lock?: string;
  memory?: number;
  cores?: number;
}

export interface FakeVm {
  vmid: number;
  name: string;
  status?: GuestStatus;
  /** 'running': `agent: 1` and the agent answers; 'configured': `agent: 1` but no agent; 'none': no agent line. */
  agent?: 'running' | 'configured' | 'none';
  memory?: number;
  /** Size of the boot disk in GiB (default 32). */
  diskGiB?: number;
  lock?: string;
}

export interface FakeProxmox {
  /** Directory holding `pct` and `qm`. */
  binDir: string;
  /** State root (layout in test/fixtures/proxmox/lib.sh). */
  root: string;
  addContainer(ct: FakeContainer): void;
  addVm(vm: FakeVm): void;
  /** Host path of `path` inside container `vmid` (no normalisation: "/a/../b" stays as given). */
  containerPath(vmid: number, path: string): string;
  /** Working directory of `qm guest exec` commands of VM `vmid`. */
  vmGuestDir(vmid: number): string;
  /** The argv of every pct/qm call so far, program name first, in call order. */
  readCalls(): string[][];
  /** sshd_config lines that put the stand-ins first on the test account's PATH. */
  sshdConfigLines(): string[];
  /** SIGKILL what `pct exec` / `qm guest exec` left running (background jobs too), then delete the state. */
  remove(): void;
}

const PLACEHOLDER = '@FAKE_PVE_ROOT@';
const FIXTURES = fileURLToPath(new URL('../fixtures/proxmox/', import.meta.url));

function lookupAccount(): { uid: number; gid: number } | undefined {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === TEST_USER && f[2] !== undefined && f[3] !== undefined) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

function testAccount(): { uid: number; gid: number } {
  if (process.getuid?.() !== 0) throw new Error('installFakeProxmox must run as root (as the e2e tests do)');
  let account = lookupAccount();
  if (account === undefined) {
    try {
      execFileSync('useradd', ['-m', '-s', '/bin/bash', TEST_USER], { stdio: 'pipe' });
    } catch (err) {
      // Another test worker may have created it in between.
      if (lookupAccount() === undefined) throw err;
    }
    account = lookupAccount();
    if (account === undefined) throw new Error(`useradd reported success but ${TEST_USER} is missing`);
  }
  return account;
}

function checkVmid(vmid: number): void {
  if (!Number.isInteger(vmid) || vmid < 100 || vmid > 999_999_999) throw new Error(`not a PVE vmid: ${vmid}`);
}

function checkValue(what: string, value: string): void {
  // Config values are single lines; an empty one would read as "absent".
  if (value === '' || /[\n\r]/.test(value)) throw new Error(`${what} must be a non-empty single line: ${JSON.stringify(value)}`);
}

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, entry.name);
    if (entry.isDirectory()) chownTree(p, uid, gid);
    else chownSync(p, uid, gid);
  }
}

function killGroup(pidText: string): void {
  const pid = Number(pidText.trim());
  if (!Number.isInteger(pid) || pid <= 1) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

export function installFakeProxmox(sshd?: TestSshd): FakeProxmox {
  const { uid, gid } = testAccount();
  const root = mkdtempSync(join(sshd?.dir ?? tmpdir(), 'mcpre-pve-'));
  // Root-owned and read-only to the test account: the scripts and the root itself.
  // Only the guests' state and the call log belong to the account that runs the scripts.
  chmodSync(root, 0o755);
  const binDir = join(root, 'bin');
  const libDir = join(root, 'lib');
  mkdirSync(binDir, { mode: 0o755 });
  mkdirSync(libDir, { mode: 0o755 });
  const install = (name: string, dir: string): void => {
    const text = readFileSync(join(FIXTURES, name), 'utf8').split(PLACEHOLDER).join(root);
    writeFileSync(join(dir, name), text, { mode: 0o755 });
    chmodSync(join(dir, name), 0o755);
  };
  install('pct', binDir);
  install('qm', binDir);
  install('lib.sh', libDir);
  install('helper.pl', libDir);
  writeFileSync(join(root, 'nodename'), 'pve\n', { mode: 0o644 });
  for (const dir of ['lxc', 'qemu']) {
    mkdirSync(join(root, dir), { mode: 0o755 });
    chownSync(join(root, dir), uid, gid);
  }
  const callsLog = join(root, 'calls.log');
  writeFileSync(callsLog, '', { mode: 0o644 });
  chownSync(callsLog, uid, gid);

  const ctDir = (vmid: number): string => join(root, 'lxc', String(vmid));
  const vmDir = (vmid: number): string => join(root, 'qemu', String(vmid));

  return {
    binDir,
    root,
    addContainer(ct: FakeContainer): void {
      checkVmid(ct.vmid);
      checkValue('name', ct.name);
      if (ct.lock !== undefined) checkValue('lock', ct.lock);
      const dir = ctDir(ct.vmid);
      if (existsSync(dir)) throw new Error(`container ${ct.vmid} already exists`);
      mkdirSync(join(dir, 'rootfs'), { recursive: true, mode: 0o755 });
      mkdirSync(join(dir, 'sessions'), { mode: 0o755 });
      const conf = [
        'arch: amd64',
        `cores: ${ct.cores ?? 1}`,
        `hostname: ${ct.name}`,
        ...(ct.lock === undefined ? [] : [`lock: ${ct.lock}`]),
        `memory: ${ct.memory ?? 512}`,
        'ostype: debian',
        `rootfs: local-lvm:vm-${ct.vmid}-disk-0,size=8G`,
        'swap: 512',
        '',
      ].join('\n');
      writeFileSync(join(dir, 'conf'), conf);
      const status = ct.status ?? 'stopped';
      writeFileSync(join(dir, 'state'), `${status}\n`);
      if (status === 'running') {
        writeFileSync(join(dir, 'started'), `${Math.floor(Date.now() / 1000)}\n`);
        // A plausible pid of the container's init for `pct status --verbose`; nothing runs under it.
        writeFileSync(join(dir, 'pid'), `${30000 + (ct.vmid % 10000)}\n`);
      }
      chownTree(dir, uid, gid);
    },
    addVm(vm: FakeVm): void {
      checkVmid(vm.vmid);
      checkValue('name', vm.name);
      if (vm.lock !== undefined) checkValue('lock', vm.lock);
      const dir = vmDir(vm.vmid);
      if (existsSync(dir)) throw new Error(`VM ${vm.vmid} already exists`);
      mkdirSync(join(dir, 'guest'), { recursive: true, mode: 0o755 });
      mkdirSync(join(dir, 'runs'), { mode: 0o755 });
      const agent = vm.agent ?? 'none';
      const conf = [
        ...(agent === 'none' ? [] : ['agent: 1']),
        'boot: order=scsi0',
        'cores: 1',
        ...(vm.lock === undefined ? [] : [`lock: ${vm.lock}`]),
        `memory: ${vm.memory ?? 2048}`,
        `name: ${vm.name}`,
        `scsi0: local-lvm:vm-${vm.vmid}-disk-0,size=${vm.diskGiB ?? 32}G`,
        '',
      ].join('\n');
      writeFileSync(join(dir, 'conf'), conf);
      const status = vm.status ?? 'stopped';
      writeFileSync(join(dir, 'state'), `${status}\n`);
      if (status === 'running') {
        writeFileSync(join(dir, 'started'), `${Math.floor(Date.now() / 1000)}\n`);
        // A plausible qemu pid for `qm list` / `qm status --verbose`; nothing runs under it.
        writeFileSync(join(dir, 'pid'), `${40000 + (vm.vmid % 10000)}\n`);
      }
      writeFileSync(join(dir, 'agent'), agent === 'running' ? 'running\n' : 'stopped\n');
      chownTree(dir, uid, gid);
    },
    containerPath(vmid: number, path: string): string {
      return `${ctDir(vmid)}/rootfs${path.startsWith('/') ? '' : '/'}${path}`;
    },
    vmGuestDir(vmid: number): string {
      return join(vmDir(vmid), 'guest');
    },
    readCalls(): string[][] {
      const text = readFileSync(callsLog, 'utf8');
      return text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as string[]);
    },
    sshdConfigLines(): string[] {
      return [`SetEnv PATH=${binDir}:/usr/local/bin:/usr/bin:/bin`];
    },
    remove(): void {
      for (const vmid of readdirSync(join(root, 'lxc'))) {
        const sessions = join(root, 'lxc', vmid, 'sessions');
        if (!existsSync(sessions)) continue;
        for (const pid of readdirSync(sessions)) killGroup(pid);
      }
      // Stopping a real guest ends its background jobs: their runners lead the groups named in their pid files.
      for (const home of [
        ...readdirSync(join(root, 'lxc')).map((vmid) => join(root, 'lxc', vmid, 'rootfs', 'root')),
        ...readdirSync(join(root, 'qemu')).map((vmid) => join(root, 'qemu', vmid, 'guest', 'root')),
      ]) {
        const jobs = join(home, '.mcp-remote-exec', 'jobs');
        if (!existsSync(jobs)) continue;
        for (const job of readdirSync(jobs)) {
          const pid = join(jobs, job, 'pid');
          if (existsSync(pid)) killGroup(readFileSync(pid, 'utf8').split(' ')[0] ?? '');
        }
      }
      for (const vmid of readdirSync(join(root, 'qemu'))) {
        const runs = join(root, 'qemu', vmid, 'runs');
        if (!existsSync(runs)) continue;
        for (const run of readdirSync(runs)) {
          const leader = join(runs, run, 'leader');
          if (existsSync(leader)) killGroup(readFileSync(leader, 'utf8'));
        }
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * The relay's host-side temp dirs for container files (/tmp/mre-pct.*) that stay. Every test file
 * that moves container files shares /tmp, so another file's transfer may hold one for a moment:
 * wait (bounded) for those to go, and report what is left.
 */
export async function leftoverPctTempDirs(withinMs = 10_000): Promise<string[]> {
  const list = (): string[] => readdirSync('/tmp').filter((name) => name.startsWith('mre-pct.'));
  const until = performance.now() + withinMs;
  while (list().length > 0 && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 100));
  return list();
}
