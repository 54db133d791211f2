// Checks the pct/qm stand-in (test/fixtures/proxmox) through the real test sshd, so that a relay
// test failing against it can be trusted to be about the relay. Expected texts are the real
// commands' (sources named in test/fixtures/proxmox/lib.sh); commands are sent as the relay sends
// them: every argument a single-quoted shell word.

import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive, sleep, waitFor } from '../harness/wait.ts';
import { Client } from 'ssh2';
import { installFakeProxmox } from '../harness/fake-proxmox.ts';
import type { FakeProxmox } from '../harness/fake-proxmox.ts';
import { TEST_USER, processIds, remoteProcesses, startSshd } from '../harness/sshd.ts';
import type { TestSshd } from '../harness/sshd.ts';

const STEP_MS = 15_000;

interface Ran {
  stdout: string;
  stderr: string;
  code: number | null;
}

function quote(word: string): string {
  return `'${word.split("'").join(`'\\''`)}'`;
}

function commandLine(argv: string[]): string {
  return argv.map(quote).join(' ');
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function cmdlineOf(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  } catch {
    return undefined;
  }
}

/** printf "%-10s %-10s %-12s %-20s\n" of pct list. */
const pctRow = (a: string, b: string, c: string, d: string): string => `${a.padEnd(10)} ${b.padEnd(10)} ${c.padEnd(12)} ${d.padEnd(20)}\n`;
/** printf "%10s %-20s %-10s %-10s %12s %-10s\n" of qm list. */
const qmRow = (a: string, b: string, c: string, d: string, e: string, f: string): string =>
  `${a.padStart(10)} ${b.padEnd(20)} ${c.padEnd(10)} ${d.padEnd(10)} ${e.padStart(12)} ${f.padEnd(10)}\n`;

describe('pct/qm stand-in through the test sshd', () => {
  let fake: FakeProxmox;
  let sshd: TestSshd;
  let client: Client;

  const run = (argv: string[], stdin?: string): Promise<Ran> =>
    withTimeout(
      new Promise<Ran>((resolve, reject) => {
        client.exec(commandLine(argv), (err, channel) => {
          if (err) {
            reject(err);
            return;
          }
          const out: Buffer[] = [];
          const errs: Buffer[] = [];
          let code: number | null = null;
          channel.on('data', (d: Buffer) => out.push(d));
          channel.stderr.on('data', (d: Buffer) => errs.push(d));
          channel.on('exit', (c: number | null) => (code = c));
          channel.on('close', () => resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errs).toString('utf8'), code }));
          if (stdin !== undefined) channel.end(stdin);
          else channel.end();
        });
      }),
      STEP_MS,
      argv.join(' '),
    );

  beforeAll(async () => {
    fake = installFakeProxmox();
    sshd = await startSshd({ extraConfig: fake.sshdConfigLines() });
    client = new Client();
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        client.once('ready', () => resolve());
        client.once('error', reject);
        client.connect({ host: sshd.host, port: sshd.port, username: sshd.user, privateKey: sshd.privateKey, readyTimeout: STEP_MS });
      }),
      STEP_MS + 1_000,
      'ssh connect',
    );
    client.setNoDelay(true);
  }, 60_000);

  afterAll(async () => {
    client?.end();
    fake?.remove();
    await sshd?.stop();
  });

  describe('pct list', () => {
    it('prints nothing at all when there are no containers', async () => {
      expect(await run(['pct', 'list'])).toEqual({ stdout: '', stderr: '', code: 0 });
    });

    it('prints the header and one padded row per container, sorted by number', async () => {
      fake.addContainer({ vmid: 1000, name: 'db', status: 'stopped', lock: 'backup' });
      fake.addContainer({ vmid: 101, name: 'web', status: 'running' });
      fake.addContainer({ vmid: 205, name: 'a-name-longer-than-twenty', status: 'stopped' });
      const r = await run(['pct', 'list']);
      expect(r).toEqual({
        stdout:
          pctRow('VMID', 'Status', 'Lock', 'Name') +
          pctRow('101', 'running', '', 'web') +
          pctRow('205', 'stopped', '', 'a-name-longer-than-twenty') +
          pctRow('1000', 'stopped', 'backup', 'db'),
        stderr: '',
        code: 0,
      });
      // Byte-level: the empty Lock column is twelve spaces between two separators, never the name.
      expect(r.stdout.split('\n')[1]).toBe('101        running                 web                 ');
      expect(r.stdout.split('\n')[3]).toBe('1000       stopped    backup       db                  ');
    });
  });

  describe('pct status', () => {
    it('prints status: running|stopped', async () => {
      expect(await run(['pct', 'status', '101'])).toEqual({ stdout: 'status: running\n', stderr: '', code: 0 });
      expect(await run(['pct', 'status', '205'])).toEqual({ stdout: 'status: stopped\n', stderr: '', code: 0 });
    });

    it('--verbose prints sorted key: value lines, pid only when running, the lock when set', async () => {
      const running = await run(['pct', 'status', '101', '--verbose']);
      expect(running.code).toBe(0);
      const lines = running.stdout.trimEnd().split('\n');
      const keys = lines.map((l) => l.slice(0, l.indexOf(':')));
      expect(keys).toEqual([...keys].sort());
      expect(lines).toContain('name: web');
      expect(lines).toContain('status: running');
      expect(lines).toContain('vmid: 101');
      expect(lines).toContain('type: lxc');
      expect(lines).toContain('maxmem: 536870912');
      expect(lines.some((l) => /^pid: \d+$/.test(l))).toBe(true);
      expect(lines.some((l) => /^uptime: \d+$/.test(l))).toBe(true);
      const locked = (await run(['pct', 'status', '1000', '--verbose'])).stdout.split('\n');
      expect(locked).toContain('lock: backup');
      expect(locked).toContain('status: stopped');
      expect(locked.some((l) => l.startsWith('pid:'))).toBe(false);
    });

    it('an unknown container: the config file does not exist, exit 2', async () => {
      expect(await run(['pct', 'status', '999'])).toEqual({
        stdout: '',
        stderr: "Configuration file 'nodes/pve/lxc/999.conf' does not exist\n",
        code: 2,
      });
    });
  });

  describe('argument rules', () => {
    it('a malicious vmid is a parameter error and nothing runs on the host', async () => {
      const marker = join(fake.root, 'pwned');
      const vmid = `101; touch ${marker}`;
      const before = fake.readCalls().length;
      expect(await run(['pct', 'exec', vmid, '--', 'touch', marker])).toEqual({
        stdout: '',
        stderr: `400 Parameter verification failed.\nvmid: type check ('integer') failed - got '${vmid}'\npct exec <vmid> [<extra-args>] [OPTIONS]\n`,
        code: 255,
      });
      expect(existsSync(marker)).toBe(false);
      expect(fake.readCalls().slice(before)).toEqual([['pct', 'exec', vmid, '--', 'touch', marker]]);
    });

    it('a number that is no VM ID fails the pve-vmid format', async () => {
      expect(await run(['qm', 'status', '99'])).toEqual({
        stdout: '',
        stderr: '400 Parameter verification failed.\nvmid: invalid format - value does not look like a valid VM ID\nqm status <vmid> [OPTIONS]\n',
        code: 255,
      });
    });

    it('unknown commands, unknown options and missing arguments are usage errors (255)', async () => {
      const unknown = await run(['pct', 'frobnicate', '101']);
      expect(unknown.code).toBe(255);
      expect(unknown.stdout).toBe('');
      expect(unknown.stderr.startsWith("ERROR: unknown command 'pct frobnicate'\nUSAGE: pct <COMMAND> [ARGS] [OPTIONS]\n")).toBe(true);
      expect(await run(['pct', 'status', '101', '--bogus'])).toEqual({
        stdout: '',
        stderr: 'Unknown option: bogus\n400 unable to parse option\npct status <vmid> [OPTIONS]\n',
        code: 255,
      });
      expect(await run(['pct', 'push', '101', '/x'])).toEqual({
        stdout: '',
        stderr: '400 not enough arguments\npct push <vmid> <file> <destination> [OPTIONS]\n',
        code: 255,
      });
      expect(await run(['pct', 'status'])).toEqual({
        stdout: '',
        stderr: '400 Parameter verification failed.\nvmid: property is missing and it is not optional\npct status <vmid> [OPTIONS]\n',
        code: 255,
      });
      expect(await run(['pct', 'status', '101', '102'])).toEqual({
        stdout: '',
        stderr: '400 too many arguments\npct status <vmid> [OPTIONS]\n',
        code: 255,
      });
    });

    it('an unambiguous prefix names a command, as in the real CLIHandler', async () => {
      expect((await run(['pct', 'stat', '101'])).stdout).toBe('status: running\n');
    });
  });

  describe('pct start / stop / shutdown', () => {
    it('moves between running and stopped, refusing what does not apply', async () => {
      expect(await run(['pct', 'stop', '101'])).toEqual({ stdout: '', stderr: '', code: 0 });
      expect((await run(['pct', 'status', '101'])).stdout).toBe('status: stopped\n');
      expect(await run(['pct', 'stop', '101'])).toEqual({ stdout: '', stderr: 'CT 101 not running\n', code: 255 });
      expect(await run(['pct', 'shutdown', '101'])).toEqual({ stdout: '', stderr: 'CT 101 not running\n', code: 255 });
      expect(await run(['pct', 'start', '101'])).toEqual({ stdout: '', stderr: '', code: 0 });
      expect((await run(['pct', 'status', '101'])).stdout).toBe('status: running\n');
      expect(await run(['pct', 'start', '101'])).toEqual({ stdout: '', stderr: 'CT 101 already running\n', code: 255 });
      expect(await run(['pct', 'shutdown', '101', '--timeout', '5', '--forceStop', '1'])).toEqual({ stdout: '', stderr: '', code: 0 });
      expect((await run(['pct', 'status', '101'])).stdout).toBe('status: stopped\n');
      expect(await run(['pct', 'start', '101'])).toEqual({ stdout: '', stderr: '', code: 0 });
    });

    it('a locked container does not start, and stays stopped', async () => {
      expect(await run(['pct', 'start', '1000'])).toEqual({ stdout: '', stderr: 'CT is locked (backup)\n', code: 255 });
      expect((await run(['pct', 'status', '1000'])).stdout).toBe('status: stopped\n');
    });

    it('an unknown container: start names the missing config, stop says not running', async () => {
      expect(await run(['pct', 'start', '999'])).toEqual({
        stdout: '',
        stderr: "Configuration file 'nodes/pve/lxc/999.conf' does not exist\n",
        code: 255,
      });
      expect(await run(['pct', 'stop', '999'])).toEqual({ stdout: '', stderr: 'CT 999 not running\n', code: 255 });
    });

    it('a bad --timeout is a parameter error', async () => {
      expect(await run(['pct', 'shutdown', '101', '--timeout', 'soon'])).toEqual({
        stdout: '',
        stderr: "400 Parameter verification failed.\ntimeout: type check ('integer') failed - got 'soon'\npct shutdown <vmid> [OPTIONS]\n",
        code: 255,
      });
    });
  });

  describe('pct exec', () => {
    it('refuses a stopped container with the real message', async () => {
      expect(await run(['pct', 'exec', '205', '--', 'true'])).toEqual({
        stdout: '',
        stderr: "container '205' not running!\n",
        code: 255,
      });
      expect(await run(['pct', 'exec', '999', '--', 'true'])).toEqual({
        stdout: '',
        stderr: "Configuration file 'nodes/pve/lxc/999.conf' does not exist\n",
        code: 2,
      });
    });

    it("passes the command's output and exit status through", async () => {
      expect(await run(['pct', 'exec', '101', '--', 'bash', '-c', 'echo out; echo err >&2; exit 7'])).toEqual({
        stdout: 'out\n',
        stderr: 'err\n',
        code: 7,
      });
      expect(await run(['pct', 'exec', '101', '--', 'cat'], 'from stdin')).toEqual({ stdout: 'from stdin', stderr: '', code: 0 });
    });

    it("runs in the rootfs with HOME the container's /root (mapped into the rootfs), in a session of its own", async () => {
      const r = await run(['pct', 'exec', '101', '--', 'bash', '-c', 'pwd; echo "$HOME"; ps -o sid= -p $$; echo $$']);
      const [pwd, home, sid, pid] = r.stdout
        .trim()
        .split('\n')
        .map((s) => s.trim());
      expect(pwd).toBe(fake.containerPath(101, '/').replace(/\/$/, ''));
      expect(home).toBe(fake.containerPath(101, '/root'));
      expect(sid).toBe(pid);
    });

    it('maps absolute paths for file utilities into the rootfs', async () => {
      mkdirSync(fake.containerPath(101, '/etc'), { recursive: true });
      writeFileSync(fake.containerPath(101, '/etc/marker'), 'twelve bytes');
      chownSync(fake.containerPath(101, '/etc'), statSync(fake.containerPath(101, '/')).uid, statSync(fake.containerPath(101, '/')).gid);
      expect((await run(['pct', 'exec', '101', '--', 'test', '-e', '/etc/marker'])).code).toBe(0);
      expect((await run(['pct', 'exec', '101', '--', 'test', '-e', '/etc/absent'])).code).toBe(1);
      expect(await run(['pct', 'exec', '101', '--', 'stat', '-c', '%s', '--', '/etc/marker'])).toEqual({ stdout: '12\n', stderr: '', code: 0 });
      expect((await run(['pct', 'exec', '101', '--', 'mv', '/etc/marker', '/etc/moved'])).code).toBe(0);
      expect(existsSync(fake.containerPath(101, '/etc/moved'))).toBe(true);
      expect(existsSync(fake.containerPath(101, '/etc/marker'))).toBe(false);
    });

    it('without "--" a dash word is an option of pct itself (Getopt::Long)', async () => {
      expect(await run(['pct', 'exec', '101', 'ls', '-l'])).toEqual({
        stdout: '',
        stderr: 'Unknown option: l\n400 unable to parse option\npct exec <vmid> [<extra-args>] [OPTIONS]\n',
        code: 255,
      });
    });

    it("killing pct's process group on the host leaves the command running in the container", async () => {
      const channel = await new Promise<import('ssh2').ClientChannel>((resolve, reject) =>
        client.exec(commandLine(['pct', 'exec', '101', '--', 'bash', '-c', 'echo ready; exec sleep 61.25']), (err, ch) => (err ? reject(err) : resolve(ch))),
      );
      let out = '';
      channel.on('data', (d: Buffer) => (out += d.toString('utf8')));
      const closed = new Promise<void>((resolve) => channel.on('close', () => resolve()));
      let sleeper: number | undefined;
      try {
        await waitFor(() => out.includes('ready'), STEP_MS, 'the in-container command to start');
        await waitFor(() => remoteProcesses('sleep 61.25', TEST_USER).some((p) => cmdlineOf(p)?.join(' ') === 'sleep 61.25'), STEP_MS, 'sleep to be exec-ed');
        sleeper = remoteProcesses('sleep 61.25', TEST_USER).find((p) => cmdlineOf(p)?.join(' ') === 'sleep 61.25');
        expect(sleeper).toBeDefined();
        const sleeperIds = processIds(sleeper as number);
        // pct waits for the command it started: it is the command's parent.
        const pct = sleeperIds?.ppid as number;
        expect(cmdlineOf(pct)?.slice(1, 4)).toEqual([`${fake.binDir}/pct`, 'exec', '101']);
        const pctIds = processIds(pct);
        expect(pctIds).toBeDefined();
        expect(sleeperIds?.sid).toBe(sleeper);
        expect(sleeperIds?.pgid).not.toBe(pctIds?.pgid);

        process.kill(-(pctIds?.pgid as number), 'SIGKILL');
        await waitFor(() => !isAlive(pct) || cmdlineOf(pct) === undefined || cmdlineOf(pct)?.length === 0, STEP_MS, 'pct to die');
        await sleep(200);
        expect(isAlive(sleeper as number)).toBe(true);
        expect(cmdlineOf(sleeper as number)).toEqual(['sleep', '61.25']);
      } finally {
        if (sleeper !== undefined && isAlive(sleeper)) process.kill(sleeper, 'SIGKILL');
        channel.close();
        await withTimeout(closed, STEP_MS, 'channel close').catch(() => undefined);
      }
      // SIGKILL is delivered asynchronously: wait (bounded) for it to be gone or a zombie.
      await waitFor(() => !(isAlive(sleeper as number) && (cmdlineOf(sleeper as number)?.length ?? 0) > 0), STEP_MS, 'the killed command to end');
    });
  });

  describe('pct push / pull', () => {
    // Spaces, both quotes, $(id), backticks, a newline, and a name that starts with "-".
    const dir = `/srv/dir with spaces 'single' "double" $(id) \`id\`\nsecond line`;
    const target = `${dir}/-lead name`;
    let src: string;

    beforeAll(() => {
      // A host file the test account can read, as the relay's upload would leave it.
      const uploads = join(fake.root, 'qemu', 'uploads');
      mkdirSync(uploads, { recursive: true });
      src = join(uploads, `up load 'q' $(id)`);
      writeFileSync(src, 'payload \u00e9\n');
      chmodSync(src, 0o644);
      const owner = statSync(join(fake.root, 'qemu'));
      chownSync(uploads, owner.uid, owner.gid);
      chownSync(src, owner.uid, owner.gid);
    });

    it('push lands at exactly that path, with 0666 & ~umask by default and --perms when given', async () => {
      expect((await run(['pct', 'exec', '101', '--', 'mkdir', '-p', '--', dir])).code).toBe(0);
      expect(statSync(fake.containerPath(101, dir)).isDirectory()).toBe(true);
      expect(await run(['pct', 'push', '101', src, target])).toEqual({ stdout: '', stderr: '', code: 0 });
      const landed = fake.containerPath(101, target);
      expect(readFileSync(landed, 'utf8')).toBe('payload \u00e9\n');
      expect(statSync(landed).mode & 0o777).toBe(0o644);
      expect(await run(['pct', 'push', '101', src, `${target}.640`, '--perms', '640'])).toEqual({ stdout: '', stderr: '', code: 0 });
      expect(statSync(fake.containerPath(101, `${target}.640`)).mode & 0o777).toBe(0o640);
      // An existing file keeps its mode unless --perms says otherwise.
      expect((await run(['pct', 'push', '101', src, `${target}.640`])).code).toBe(0);
      expect(statSync(fake.containerPath(101, `${target}.640`)).mode & 0o777).toBe(0o640);
    });

    it('pull copies back to the host path, applying --perms', async () => {
      const dest = join(fake.root, 'qemu', 'uploads', `pulled "x" \`y\``);
      expect(await run(['pct', 'pull', '101', target, dest, '--perms', '600'])).toEqual({ stdout: '', stderr: '', code: 0 });
      expect(readFileSync(dest, 'utf8')).toBe('payload \u00e9\n');
      expect(statSync(dest).mode & 0o777).toBe(0o600);
    });

    it('a failed transfer task prints its error but exits 0, as the real pct does', async () => {
      expect(await run(['pct', 'push', '101', '/nonexistent/source', '/srv/x'])).toEqual({
        stdout: '',
        stderr: 'failed to open /nonexistent/source for reading\n',
        code: 0,
      });
      expect(await run(['pct', 'push', '101', src, '/no/such/dir/file'])).toEqual({
        stdout: '',
        stderr: 'failed to create file: /no/such/dir/file: No such file or directory\n',
        code: 0,
      });
      const dest = join(fake.root, 'qemu', 'uploads', 'from-missing');
      expect(await run(['pct', 'pull', '101', '/no/such/file', dest])).toEqual({
        stdout: '',
        stderr: 'failed to open /no/such/file: No such file or directory\n',
        code: 0,
      });
      // pct pull creates its destination before it opens the source.
      expect(readFileSync(dest, 'utf8')).toBe('');
    });

    it('refuses a stopped container (pull with the die message Perl completes)', async () => {
      expect(await run(['pct', 'push', '101', src, '/x', '--perms', 'rw'])).toEqual({
        stdout: '',
        stderr: "invalid mode: '0rw'\n",
        code: 0,
      });
      expect(await run(['pct', 'push', '205', src, '/x'])).toEqual({ stdout: '', stderr: 'can only push files to a running CT\n', code: 255 });
      const pull = await run(['pct', 'pull', '205', '/x', '/tmp/never']);
      expect(pull.code).toBe(255);
      expect(pull.stderr).toMatch(/^can only pull files from a running VM at \/usr\/share\/perl5\/PVE\/CLI\/pct\.pm line \d+\.\n$/);
      expect(existsSync('/tmp/never')).toBe(false);
    });
  });

  describe('qm', () => {
    it('list prints nothing when there are no VMs, then the real header and columns', async () => {
      expect(await run(['qm', 'list'])).toEqual({ stdout: '', stderr: '', code: 0 });
      fake.addVm({ vmid: 100, name: 'app', status: 'running', agent: 'running' });
      fake.addVm({ vmid: 102, name: 'no-agent', status: 'running', agent: 'none' });
      fake.addVm({ vmid: 103, name: 'agent-down', status: 'running', agent: 'configured' });
      fake.addVm({ vmid: 104, name: 'off', status: 'stopped', agent: 'running', memory: 512, diskGiB: 10 });
      const pid = /^pid: (\d+)$/m.exec((await run(['qm', 'status', '100', '--verbose'])).stdout)?.[1] ?? 'none';
      const r = await run(['qm', 'list']);
      expect(r.stdout.split('\n')[0]).toBe('      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID       ');
      expect(r.stdout).toBe(
        qmRow('VMID', 'NAME', 'STATUS', 'MEM(MB)', 'BOOTDISK(GB)', 'PID') +
          qmRow('100', 'app', 'running', '2048', '32.00', pid) +
          qmRow('102', 'no-agent', 'running', '2048', '32.00', /^pid: (\d+)$/m.exec((await run(['qm', 'status', '102', '--verbose'])).stdout)?.[1] ?? '') +
          qmRow('103', 'agent-down', 'running', '2048', '32.00', /^pid: (\d+)$/m.exec((await run(['qm', 'status', '103', '--verbose'])).stdout)?.[1] ?? '') +
          qmRow('104', 'off', 'stopped', '512', '10.00', '0'),
      );
    });

    it("status, start, stop and shutdown with qm's own messages", async () => {
      expect(await run(['qm', 'status', '104'])).toEqual({ stdout: 'status: stopped\n', stderr: '', code: 0 });
      expect((await run(['qm', 'status', '100', '--verbose'])).stdout).toContain('qmpstatus: running\n');
      expect(await run(['qm', 'status', '999'])).toEqual({
        stdout: '',
        stderr: "Configuration file 'nodes/pve/qemu-server/999.conf' does not exist\n",
        code: 2,
      });
      expect(await run(['qm', 'start', '100'])).toEqual({ stdout: '', stderr: 'VM 100 already running\n', code: 255 });
      expect(await run(['qm', 'stop', '104'])).toEqual({ stdout: '', stderr: '', code: 0 }); // already stopped: quiet success
      expect(await run(['qm', 'start', '104'])).toEqual({ stdout: '', stderr: '', code: 0 });
      expect((await run(['qm', 'status', '104'])).stdout).toBe('status: running\n');
      expect(await run(['qm', 'shutdown', '104', '--timeout', '3'])).toEqual({ stdout: '', stderr: '', code: 0 });
      expect((await run(['qm', 'status', '104'])).stdout).toBe('status: stopped\n');
      expect(await run(['qm', 'start', '999'])).toEqual({
        stdout: '',
        stderr: "Configuration file 'nodes/pve/qemu-server/999.conf' does not exist\n",
        code: 255,
      });
    });

    it('guest exec prints the agent result as PVE pretty JSON and exits 0 whatever the exit code', async () => {
      expect(await run(['qm', 'guest', 'exec', '100', '--', 'bash', '-c', 'echo out; echo err >&2; exit 3'])).toEqual({
        stdout: '{\n   "err-data" : "err\\n",\n   "exitcode" : 3,\n   "exited" : 1,\n   "out-data" : "out\\n"\n}\n',
        stderr: '',
        code: 0,
      });
      expect(await run(['qm', 'guest', 'exec', '100', '--', 'true'])).toEqual({
        stdout: '{\n   "exitcode" : 0,\n   "exited" : 1\n}\n',
        stderr: '',
        code: 0,
      });
      expect(await run(['qm', 'guest', 'exec', '100', '--', 'sh', '-c', 'kill -9 $$'])).toEqual({
        stdout: '{\n   "exited" : 1,\n   "signal" : 9\n}\n',
        stderr: '',
        code: 0,
      });
      const quoted = await run(['qm', 'guest', 'exec', '100', '--', 'printf', '%s', `a "q" \\ $(id) \`id\`\n`]);
      expect(JSON.parse(quoted.stdout)).toEqual({ exitcode: 0, exited: 1, 'out-data': `a "q" \\ $(id) \`id\`\n` });
    });

    it("guest exec runs with the guest's / as working directory and HOME its /root (mapped)", async () => {
      const r = await run(['qm', 'guest', 'exec', '100', '--', 'sh', '-c', 'pwd; echo "$HOME"']);
      expect(JSON.parse(r.stdout)).toEqual({ exitcode: 0, exited: 1, 'out-data': `${fake.vmGuestDir(100)}\n${fake.vmGuestDir(100)}/root\n` });
    });

    it('guest exec reports a command exited only once nothing holds its output open, as the agent does', async () => {
      const held = await run(['qm', 'guest', 'exec', '100', '--timeout', '1', '--', 'sh', '-c', 'sleep 47.6 & echo started']);
      expect(held.stderr).toBe('timeout reached, returning pid\n');
      const detached = await run(['qm', 'guest', 'exec', '100', '--timeout', '5', '--', 'sh', '-c', 'sleep 47.7 >/dev/null 2>&1 & echo started']);
      expect(JSON.parse(detached.stdout)).toEqual({ exitcode: 0, exited: 1, 'out-data': 'started\n' });
      for (const pid of [...remoteProcesses('sleep 47.6', TEST_USER), ...remoteProcesses('sleep 47.7', TEST_USER)]) process.kill(pid, 'SIGKILL');
    });

    it('guest exec refuses without an agent, with the agent down, and on a stopped VM', async () => {
      expect(await run(['qm', 'guest', 'exec', '102', '--', 'true'])).toEqual({ stdout: '', stderr: 'No QEMU guest agent configured\n', code: 255 });
      expect(await run(['qm', 'guest', 'exec', '103', '--', 'true'])).toEqual({ stdout: '', stderr: 'QEMU guest agent is not running\n', code: 255 });
      expect(await run(['qm', 'guest', 'exec', '104', '--', 'true'])).toEqual({ stdout: '', stderr: 'VM 104 is not running\n', code: 255 });
      expect(await run(['qm', 'guest', 'exec', '100', '--', 'no-such-program'])).toEqual({
        stdout: '',
        stderr: "Agent error: Guest agent command failed, error was 'Failed to execute child process “no-such-program” (No such file or directory)'\n",
        code: 255,
      });
    });

    it('guest exec past its --timeout returns the pid and leaves the command running', async () => {
      const r = await run(['qm', 'guest', 'exec', '100', '--timeout', '1', '--', 'sleep', '47.5']);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('timeout reached, returning pid\n');
      const m = /^\{\n {3}"pid" : (\d+)\n\}\n$/.exec(r.stdout);
      expect(m).not.toBeNull();
      const pid = Number(m?.[1]);
      try {
        expect(cmdlineOf(pid)).toEqual(['sleep', '47.5']);
      } finally {
        if (isAlive(pid)) process.kill(pid, 'SIGKILL');
      }
    });
  });
});
