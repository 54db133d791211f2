/**
 * Logging in with OpenSSH user certificates against a real sshd that trusts a test CA
 * (TrustedUserCAKeys) and has no authorized_keys at all, so only a certificate can log in. The CA
 * and the user keys are made here with ssh-keygen, certificates signed with `ssh-keygen -s`.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relayExec } from '../harness/relay-exec.ts';
import type { Outcome } from '../../shared/errors.ts';
import type { OperationResult } from '../../shared/protocol.ts';
import { ConfigError, loadHostsConfig, type HostConfig, type RelayHostsConfig } from '../../relay/config.ts';
import { RelayOperations } from '../../relay/operations.ts';
import { startSshd, type TestSshd } from '../harness/sshd.ts';

let sshd: TestSshd;
let dir: string;
const opened: RelayOperations[] = [];

function keygen(args: string[]): void {
  execFileSync('ssh-keygen', ['-q', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A new key pair at `path` (no passphrase). */
function newKey(path: string, type: 'ed25519' | 'rsa' | 'ecdsa'): string {
  keygen(['-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-C', 'cert-test', '-f', path]);
  return path;
}

/** Sign `key`.pub with the test CA; writes `key`-cert.pub (or `out` when given) and returns its path. */
function sign(key: string, principals: string, validity: string, out?: string): string {
  keygen(['-s', join(dir, 'ca'), '-I', 'cert-test-id', '-n', principals, '-V', validity, `${key}.pub`]);
  if (out === undefined) return `${key}-cert.pub`;
  copyFileSync(`${key}-cert.pub`, out);
  rmSync(`${key}-cert.pub`);
  return out;
}

/** Load a config file listing `hosts` (entries of the relay's JSON format, pointed at the test sshd). */
function loadFile(hosts: Record<string, unknown>[]): RelayHostsConfig {
  const file = join(dir, `relay-${opened.length}-${Math.random().toString(36).slice(2)}.json`);
  const entries = hosts.map((entry) => ({ address: sshd.host, port: sshd.port, user: sshd.user, ...entry }));
  writeFileSync(file, JSON.stringify({ relay_id: 'cert-test', known_hosts: [sshd.knownHostsPath], hosts: entries }));
  return loadHostsConfig({ SSH_KNOWN_HOSTS: sshd.knownHostsPath, MCP_REMOTE_EXEC_STATE_DIR: join(dir, 'state') }, file);
}

function loadError(load: () => unknown): string {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error instanceof Error ? error.message : String(error);
  }
  throw new Error('the config loaded');
}

function operations(config: RelayHostsConfig): RelayOperations {
  const ops = new RelayOperations(config);
  opened.push(ops);
  return ops;
}

/** Run `id -un` on `hostName`, collecting stdout. */
async function whoami(ops: RelayOperations, hostName: string): Promise<{ outcome: Outcome<OperationResult>; stdout: string }> {
  return relayExec(ops, hostName, 'id -un');
}

function hostOf(config: RelayHostsConfig): HostConfig {
  const [host] = config.hosts;
  if (!host) throw new Error('no host loaded');
  return host;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mre-cert-'));
  newKey(join(dir, 'ca'), 'ed25519');
  // No authorized_keys: only a certificate signed by the CA logs in (sshd keeps the first value it reads).
  sshd = await startSshd({ extraConfig: [`TrustedUserCAKeys ${join(dir, 'ca.pub')}`, 'AuthorizedKeysFile none'] });
});

afterAll(async () => {
  for (const ops of opened) ops.close();
  await sshd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('OpenSSH user certificates', () => {
  it('logs in with an Ed25519 key and the -cert.pub beside it, which the plain key alone cannot', async () => {
    const key = newKey(join(dir, 'user_ed25519'), 'ed25519');
    const certificate = sign(key, sshd.user, '+1h');
    const config = loadFile([{ name: 'by-cert', key_path: key }]);
    expect(hostOf(config).auth).toMatchObject({ kind: 'key', certificatePath: certificate });
    const { outcome, stdout } = await whoami(operations(config), 'by-cert');
    expect(outcome.ok && outcome.value.op === 'exec' && outcome.value.exitCode).toBe(0);
    expect(stdout.trim()).toBe(sshd.user);

    // The same key without its certificate: refused, so the certificate is what logged in.
    const bare = join(dir, 'bare', 'user_ed25519');
    execFileSync('mkdir', ['-p', join(dir, 'bare')]);
    copyFileSync(key, bare);
    const plain = loadFile([{ name: 'plain-key', key_path: bare }]);
    expect(hostOf(plain).auth).not.toHaveProperty('certificatePath');
    const refused = await whoami(operations(plain), 'plain-key');
    expect(refused.outcome.ok ? null : refused.outcome.error.code).toBe('auth_failed');
  });

  it('logs in with an RSA key and a certificate given as certificate_path (rsa-sha2 signatures)', async () => {
    const key = newKey(join(dir, 'user_rsa'), 'rsa');
    const certificate = sign(key, sshd.user, '+1h', join(dir, 'rsa-certificate.pub'));
    const config = loadFile([{ name: 'by-rsa-cert', key_path: key, certificate_path: certificate }]);
    const { outcome, stdout } = await whoami(operations(config), 'by-rsa-cert');
    expect(outcome.ok && outcome.value.op === 'exec' && outcome.value.exitCode).toBe(0);
    expect(stdout.trim()).toBe(sshd.user);
  });

  it('logs in with an ECDSA key and its certificate', async () => {
    const key = newKey(join(dir, 'user_ecdsa'), 'ecdsa');
    sign(key, sshd.user, '+1h');
    const { outcome, stdout } = await whoami(operations(loadFile([{ name: 'by-ecdsa-cert', key_path: key }])), 'by-ecdsa-cert');
    expect(outcome.ok && outcome.value.op === 'exec' && outcome.value.exitCode).toBe(0);
    expect(stdout.trim()).toBe(sshd.user);
  });

  it('stdio mode: SSH_KEY with SSH_CERT logs in', async () => {
    const key = newKey(join(dir, 'stdio_ed25519'), 'ed25519');
    const certificate = sign(key, sshd.user, '+1h', join(dir, 'stdio-cert.pub'));
    const config = loadHostsConfig({
      HOST: sshd.host,
      HOST_NAME: 'from-env',
      SSH_PORT: String(sshd.port),
      SSH_USERNAME: sshd.user,
      SSH_KEY: key,
      SSH_CERT: certificate,
      SSH_KNOWN_HOSTS: sshd.knownHostsPath,
      MCP_REMOTE_EXEC_STATE_DIR: join(dir, 'state'),
    });
    expect(hostOf(config).auth).toMatchObject({ kind: 'key', certificatePath: certificate });
    const { outcome, stdout } = await whoami(operations(config), 'from-env');
    expect(outcome.ok && outcome.value.op === 'exec' && outcome.value.exitCode).toBe(0);
    expect(stdout.trim()).toBe(sshd.user);
  });

  it('falls back to the plain key, as ssh does, on a host that does not trust the CA but authorizes the key', async () => {
    const untrusting = await startSshd();
    try {
      const certificate = sign(untrusting.privateKeyPath, untrusting.user, '+1h', join(dir, 'untrusted-cert.pub'));
      const config = loadFile([{ name: 'untrusting', port: untrusting.port, key_path: untrusting.privateKeyPath, certificate_path: certificate }]);
      const ops = new RelayOperations({ ...config, knownHostsFiles: [untrusting.knownHostsPath] });
      try {
        const { outcome, stdout } = await whoami(ops, 'untrusting');
        expect(outcome.ok && outcome.value.op === 'exec' && outcome.value.exitCode).toBe(0);
        expect(stdout.trim()).toBe(untrusting.user);
      } finally {
        ops.close();
      }
    } finally {
      await untrusting.stop();
    }
  });

  it('refuses to start with an expired or not yet valid certificate, naming the host, its validity and principals', () => {
    const key = newKey(join(dir, 'expired_ed25519'), 'ed25519');
    sign(key, `${sshd.user},backup`, '20200101:20200102');
    const expired = loadError(() => loadFile([{ name: 'expired-cert', key_path: key }]));
    expect(expired).toContain('host "expired-cert"');
    expect(expired).toContain(`the certificate ${key}-cert.pub has expired`);
    expect(expired).toContain(`valid from 2020-01-01T00:00:00Z to 2020-01-02T00:00:00Z, principals: "${sshd.user}", "backup"`);

    const later = newKey(join(dir, 'later_ed25519'), 'ed25519');
    sign(later, sshd.user, '+1d:+2d');
    expect(loadError(() => loadFile([{ name: 'future-cert', key_path: later }]))).toMatch(/host "future-cert".* is not valid yet .*principals: "mcpre-test"/);

    const stdio = loadError(() =>
      loadHostsConfig({ HOST: sshd.host, HOST_NAME: 'env-host', SSH_USERNAME: sshd.user, SSH_KEY: key, MCP_REMOTE_EXEC_STATE_DIR: join(dir, 'state') }),
    );
    expect(stdio).toContain('host "env-host" (SSH_KEY)');
    expect(stdio).toContain('has expired');
  });

  it('an expired certificate renewed on disk, or expired while the relay runs, is picked up at the next connection', async () => {
    const key = newKey(join(dir, 'renewed_ed25519'), 'ed25519');
    const certificate = sign(key, sshd.user, '+1h');
    const valid = join(dir, 'renewed-valid.pub');
    copyFileSync(certificate, valid);
    const config = loadFile([{ name: 'renewed', key_path: key }]);
    // It expires on disk after the relay loaded it: the next connection is not tried with it.
    sign(key, sshd.user, '20200101:20200102');
    const ops = operations(config);
    const expired = await whoami(ops, 'renewed');
    expect(expired.outcome.ok ? null : expired.outcome.error.code).toBe('auth_failed');
    expect(expired.outcome.ok ? '' : expired.outcome.error.message).toContain(
      `Cannot log in to host "renewed" with the certificate ${certificate}: it has expired`,
    );
    expect(expired.outcome.ok ? '' : expired.outcome.error.message).toContain('valid from 2020-01-01T00:00:00Z to 2020-01-02T00:00:00Z');
    // Renewed: the same relay logs in without a restart.
    copyFileSync(valid, certificate);
    const renewed = await whoami(ops, 'renewed');
    expect(renewed.stdout.trim()).toBe(sshd.user);
  });

  it('says the certificate is not for the login user when its principals do not include them', async () => {
    const key = newKey(join(dir, 'other_ed25519'), 'ed25519');
    sign(key, 'someone-else,backup', '+1h');
    const { outcome } = await whoami(operations(loadFile([{ name: 'other-principal', key_path: key }])), 'other-principal');
    expect(outcome.ok ? null : outcome.error.code).toBe('auth_failed');
    const message = outcome.ok ? '' : outcome.error.message;
    expect(message).toContain(`Authentication as "${sshd.user}" on host "other-principal"`);
    expect(message).toContain(`is not valid for the user "${sshd.user}": its principals are "someone-else", "backup"`);
  });

  it('refuses a certificate of another key, a host certificate, a corrupt one, and one without its key', () => {
    const key = newKey(join(dir, 'mine_ed25519'), 'ed25519');
    const other = newKey(join(dir, 'theirs_ed25519'), 'ed25519');
    const theirs = sign(other, sshd.user, '+1h');
    expect(loadError(() => loadFile([{ name: 'wrong-key', key_path: key, certificate_path: theirs }]))).toContain(`host "wrong-key" in ${dir}`);
    expect(loadError(() => loadFile([{ name: 'wrong-key', key_path: key, certificate_path: theirs }]))).toContain(
      'certifies another key than the private key it is given with',
    );

    keygen(['-s', join(dir, 'ca'), '-h', '-I', 'host', '-n', 'example', '-V', '+1h', `${key}.pub`]);
    expect(loadError(() => loadFile([{ name: 'host-cert', key_path: key }]))).toContain('is a host certificate (ssh-keygen -h), not a user certificate');

    const cert = `${key}-cert.pub`;
    const [type, body] = execFileSync('cat', [cert], { encoding: 'utf8' }).split(' ');
    const blob = Buffer.from(body ?? '', 'base64');
    for (const [label, bad] of [
      ['truncated', `${type} ${blob.subarray(0, blob.length - 20).toString('base64')}\n`],
      ['huge length', `${type} ${Buffer.concat([blob.subarray(0, 40), Buffer.from([0xff, 0xff, 0xff, 0xff]), blob.subarray(44)]).toString('base64')}\n`],
      ['trailing data', `${type} ${Buffer.concat([blob, Buffer.from('extra')]).toString('base64')}\n`],
      ['plain public key', execFileSync('cat', [`${key}.pub`], { encoding: 'utf8' })],
      ['not base64', `${type} !!!\n`],
      ['empty', ''],
    ] as const) {
      writeFileSync(cert, bad);
      expect(
        loadError(() => loadFile([{ name: 'corrupt', key_path: key }])),
        label,
      ).toMatch(/host "corrupt" in .*: the certificate .* (is not|its)/);
    }
    writeFileSync(cert, Buffer.alloc(200_000, 'A'));
    expect(loadError(() => loadFile([{ name: 'huge', key_path: key }]))).toContain('far more than a certificate');
    rmSync(cert);

    expect(loadError(() => loadFile([{ name: 'missing', key_path: key, certificate_path: join(dir, 'nowhere-cert.pub') }]))).toContain('cannot be read');
    expect(loadError(() => loadFile([{ name: 'no-key', password_env: 'X', certificate_path: theirs }]))).toContain('certificate_path is for key_path');
    expect(loadError(() => loadHostsConfig({ HOST: sshd.host, SSH_USERNAME: sshd.user, SSH_PASSWORD: 'x', SSH_CERT: theirs }))).toContain(
      'SSH_CERT is set but SSH_KEY is not',
    );
  });
});
