// Checks the sshd fixture itself, so that an e2e failure elsewhere can be
// trusted to be about the relay and not about the test server.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive, sleep, waitFor } from '../harness/wait.ts';
import { Client } from 'ssh2';
import type { ClientChannel, ConnectConfig } from 'ssh2';
import { processIds, remoteProcesses, requireSshd, startSshd, waitForNoProcesses } from '../harness/sshd.ts';
import type { TestSshd } from '../harness/sshd.ts';

const STEP_MS = 5_000;
// Each test chains a few bounded steps; the test bound must cover them so a
// step's own (more specific) timeout error is what gets reported.
const TEST_MS = 30_000;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Same form as `ssh-keygen -lf`: SHA256 of the wire-format key blob, base64 without padding. */
function fingerprintOf(keyBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}

interface Connected {
  client: Client;
  presentedFingerprint: string;
}

async function connect(sshd: TestSshd, auth: Partial<ConnectConfig>): Promise<Connected> {
  const client = new Client();
  let presentedFingerprint = '';
  const verifier = (key: Buffer): boolean => {
    presentedFingerprint = fingerprintOf(key);
    return presentedFingerprint === sshd.hostKeyFingerprint;
  };
  const ready = new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
  });
  client.connect({
    host: sshd.host,
    port: sshd.port,
    username: sshd.user,
    readyTimeout: STEP_MS,
    hostVerifier: verifier,
    ...auth,
  });
  try {
    await withTimeout(ready, STEP_MS + 1_000, 'ssh connect');
  } catch (err) {
    client.end();
    throw err;
  }
  // ssh2 never sets TCP_NODELAY; without it every exec stalls on Nagle + delayed ACK.
  client.setNoDelay(true);
  return { client, presentedFingerprint };
}

function openExec(client: Client, command: string): Promise<ClientChannel> {
  return withTimeout(
    new Promise<ClientChannel>((resolve, reject) => {
      client.exec(command, (err, channel) => (err ? reject(err) : resolve(channel)));
    }),
    STEP_MS,
    `exec ${command}`,
  );
}

interface ExecResult {
  stdout: string;
  stderr: string;
  code: number | null;
}

async function exec(client: Client, command: string): Promise<ExecResult> {
  const channel = await openExec(client, command);
  return withTimeout(
    new Promise<ExecResult>((resolve) => {
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      channel.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
      channel.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      channel.on('exit', (c: number | null) => (code = c));
      channel.on('close', () => resolve({ stdout, stderr, code }));
    }),
    STEP_MS,
    `run ${command}`,
  );
}

/**
 * Whether the sshd `sshd` describes still answers on its port: something accepts there and shows
 * its host key. Another test file's server may take the freed port at once (ports are handed out
 * free, and files run in parallel), so "nothing accepts" is not what stop() can promise.
 */
function sameSshdAnswers(sshd: TestSshd): Promise<boolean> {
  return new Promise((resolve) => {
    const client = new Client();
    let settled = false;
    const settle = (answers: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.end();
      resolve(answers);
    };
    const timer = setTimeout(() => settle(false), STEP_MS);
    client.on('error', () => settle(false));
    client.connect({
      host: sshd.host,
      port: sshd.port,
      username: sshd.user,
      readyTimeout: STEP_MS,
      hostVerifier: (key: Buffer): boolean => {
        settle(fingerprintOf(key) === sshd.hostKeyFingerprint);
        return false;
      },
    });
  });
}

describe('sshd test fixture', () => {
  let sshd: TestSshd;

  beforeAll(async () => {
    sshd = await startSshd();
  }, TEST_MS);

  afterAll(async () => {
    await sshd?.stop();
  }, TEST_MS);

  it('finds sshd', () => {
    expect(requireSshd()).toBe('/usr/sbin/sshd');
  });

  it('writes a known_hosts line for exactly this server', () => {
    const lines = readFileSync(sshd.knownHostsPath, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(1);
    const [hostPart, type, blob] = (lines[0] ?? '').split(' ');
    expect(hostPart).toBe(`[127.0.0.1]:${sshd.port}`);
    expect(type).toBe('ssh-ed25519');
    expect(sshd.hostKeyType).toBe('ssh-ed25519');
    expect(fingerprintOf(Buffer.from(blob ?? '', 'base64'))).toBe(sshd.hostKeyFingerprint);
  });

  it(
    'accepts the client key and presents the expected host key',
    async () => {
      const { client, presentedFingerprint } = await connect(sshd, { privateKey: sshd.privateKey });
      try {
        expect(presentedFingerprint).toBe(sshd.hostKeyFingerprint);
        const r = await exec(client, 'id -un; pwd');
        expect(r.code).toBe(0);
        expect(r.stdout).toBe(`mcpre-test\n${sshd.home}\n`);
      } finally {
        client.end();
      }
    },
    TEST_MS,
  );

  it(
    'accepts the password',
    async () => {
      const { client } = await connect(sshd, { password: sshd.password, tryKeyboard: false });
      try {
        const r = await exec(client, 'id -un');
        expect(r.stdout.trim()).toBe('mcpre-test');
      } finally {
        client.end();
      }
    },
    TEST_MS,
  );

  it(
    'refuses a wrong password',
    async () => {
      const attempt = connect(sshd, { password: `${sshd.password}-wrong`, tryKeyboard: false });
      // sshd delays failed password attempts a little; still well within the bound.
      await expect(attempt).rejects.toMatchObject({ level: 'client-authentication' });
    },
    TEST_MS,
  );

  it(
    'rejects a host verifier mismatch (the verifier is really consulted)',
    async () => {
      const client = new Client();
      const failed = new Promise<Error>((resolve) => client.once('error', resolve));
      client.connect({
        host: sshd.host,
        port: sshd.port,
        username: sshd.user,
        privateKey: sshd.privateKey,
        readyTimeout: STEP_MS,
        hostVerifier: (): boolean => false,
      });
      const err = await withTimeout(failed, STEP_MS, 'host verification failure');
      client.end();
      expect(err.message).toMatch(/verification failed/i);
    },
    TEST_MS,
  );

  it(
    'remoteProcesses finds a command started over SSH, and not after it is killed',
    async () => {
      const { client } = await connect(sshd, { privateKey: sshd.privateKey });
      try {
        const channel = await openExec(client, 'sleep 37.5');
        // An ssh2 channel only emits 'close' once its streams are drained.
        channel.resume();
        channel.stderr.resume();
        const closed = new Promise<void>((resolve) => channel.once('close', () => resolve()));
        let pids: number[] = [];
        await waitFor(() => (pids = remoteProcesses('sleep 37.5', sshd.user)).length > 0, STEP_MS, 'sleep 37.5 to appear');
        expect(pids).toHaveLength(1);
        const pid = pids[0] ?? -1;

        // What the project's kill-on-timeout relies on: sshd setsid()s the
        // no-pty exec child, so `bash -c CMD` (here exec'd into sleep) leads its
        // own session and process group, and `kill -- -PID` reaches all of it.
        const ids = processIds(pid);
        expect(ids).toMatchObject({ pgid: pid, sid: pid });

        process.kill(pid, 'SIGKILL');
        expect(await waitForNoProcesses('sleep 37.5', sshd.user, STEP_MS), 'sleep 37.5 to disappear').toEqual([]);
        await withTimeout(closed, STEP_MS, 'channel close after kill');
      } finally {
        // If an assertion failed first, don't leave the sleep behind for later tests.
        for (const pid of remoteProcesses('sleep 37.5', sshd.user)) process.kill(pid, 'SIGKILL');
        client.end();
      }
    },
    TEST_MS,
  );

  it(
    'applies maxSessions',
    async () => {
      const limited = await startSshd({ maxSessions: 1 });
      try {
        const { client } = await connect(limited, { privateKey: limited.privateKey });
        try {
          const first = await openExec(client, 'sleep 5');
          await expect(openExec(client, 'true')).rejects.toThrow(/open failed/i);
          first.signal('KILL');
          first.close();
        } finally {
          client.end();
        }
      } finally {
        await limited.stop();
      }
    },
    TEST_MS,
  );

  it(
    'stop() ends the sshd process and removes its directory',
    async () => {
      const other = await startSshd();
      expect(isAlive(other.pid)).toBe(true);
      expect(existsSync(other.dir)).toBe(true);
      expect(await sameSshdAnswers(other)).toBe(true);

      await withTimeout(other.stop(), 15_000, 'stop()');

      expect(isAlive(other.pid)).toBe(false);
      expect(existsSync(other.dir)).toBe(false);
      expect(await sameSshdAnswers(other)).toBe(false);
      // Idempotent: afterAll hooks may call it again.
      await other.stop();
    },
    TEST_MS,
  );
});
