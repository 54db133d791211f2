/**
 * Test fixture for jump hosts: a private network namespace holding a target sshd, and a jump sshd
 * that the test reaches on its own 127.0.0.1 but whose sessions live in that namespace. So the
 * target is really reachable only through the jump: from the test's namespace its port is closed.
 *
 * The jump runs OpenSSH's sshd in inetd mode (`sshd -i`), one per connection: a listener on the
 * test's loopback hands each accepted socket to `nsenter --net=NS sshd -i`, whose forwarded
 * connections (direct-tcpip) then open inside the namespace. Everything is stopped by PID.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startManaged, type Managed } from './processes.ts';
import { childrenOf, SSHD_PATH, TEST_USER } from './sshd.ts';

export interface Netns {
  /** For nsenter --net= and startSshd({ netns }). */
  path: string;
  stop(): Promise<void>;
}

/** A network namespace with only its loopback up, held open by a sleeping process. */
export async function startNetns(): Promise<Netns> {
  const holder: Managed = startManaged('unshare', ['--net', 'sh', '-c', 'ip link set lo up && echo netns-ready && exec sleep 3600'], {});
  try {
    await holder.waitFor(/netns-ready/, 10_000);
  } catch (error) {
    await holder.stop(2_000);
    throw error;
  }
  // unshare execs sh in place, and sh execs sleep: the holder's PID is in the namespace throughout.
  return { path: `/proc/${holder.pid}/ns/net`, stop: () => holder.stop(2_000) };
}

export interface InetdSshd {
  host: '127.0.0.1';
  port: number;
  hostKeyType: string;
  hostKeyBlob: string;
  hostKeyFingerprint: string;
  /** SSH connections accepted so far (one sshd -i each). */
  connections(): number;
  /** PIDs of the sshd -i processes still running. */
  sessionPids(): number[];
  /** SIGKILL every connection's sshd and its privilege-separated children: the jump host dies under its clients. */
  killSessions(): Promise<void>;
  stop(): Promise<void>;
}

function waitExit(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * A jump sshd: listens on the test's 127.0.0.1, runs each connection's sshd in `netns`. Logs in
 * TEST_USER with the keys in `authorizedKeys`; `extraConfig` lines (e.g. PermitOpen) come first,
 * since sshd keeps the first value it reads.
 */
export async function startInetdSshd(options: { netns: string; authorizedKeys: string; extraConfig?: string[] }): Promise<InetdSshd> {
  const dir = mkdtempSync(join(tmpdir(), 'mcpre-jump-'));
  chmodSync(dir, 0o755);
  const hostKeyPath = join(dir, 'ssh_host_ed25519_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'mcpre-jump-host', '-f', hostKeyPath]);
  const [hostKeyType = '', hostKeyBlob = ''] = readFileSync(`${hostKeyPath}.pub`, 'utf8').trim().split(/\s+/);
  const configPath = join(dir, 'sshd_config');
  writeFileSync(
    configPath,
    [
      ...(options.extraConfig ?? []),
      `HostKey ${hostKeyPath}`,
      'UsePAM no',
      'StrictModes no',
      `AuthorizedKeysFile ${options.authorizedKeys}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin no',
      `AllowUsers ${TEST_USER}`,
      'AllowTcpForwarding yes',
      'PrintMotd no',
      'UseDNS no',
      '',
    ].join('\n'),
  );
  const children = new Set<ChildProcess>();
  let accepted = 0;
  // pauseOnConnect: this process never reads from the socket; the sshd it is handed to does.
  const server: Server = createServer({ pauseOnConnect: true }, (socket) => {
    accepted += 1;
    const child = spawn('nsenter', [`--net=${options.netns}`, SSHD_PATH, '-i', '-e', '-f', configPath], { stdio: [socket, socket, 'ignore'] });
    children.add(child);
    child.once('exit', () => children.delete(child));
    child.once('error', () => children.delete(child));
    // The child holds its own copy of the socket; ours is no longer needed.
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const killSessions = async (): Promise<void> => {
    const running = [...children];
    for (const child of running) {
      // Our own descendants, found by parent PID (the session's user process runs under the monitor).
      const pids = child.pid === undefined ? [] : [...childrenOf(child.pid), child.pid];
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
    await Promise.all(running.map((child) => waitExit(child, 5_000)));
  };
  return {
    host: '127.0.0.1',
    port,
    hostKeyType,
    hostKeyBlob,
    hostKeyFingerprint: 'SHA256:' + createHash('sha256').update(Buffer.from(hostKeyBlob, 'base64')).digest('base64').replace(/=+$/, ''),
    connections: () => accepted,
    sessionPids: () => [...children].map((child) => child.pid).filter((pid): pid is number => pid !== undefined),
    killSessions,
    async stop(): Promise<void> {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await killSessions();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
