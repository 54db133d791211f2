import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decideHostKey,
  findKnownHostKeys,
  fingerprintSha256,
  keyTypeOfBlob,
  knownHostsName,
  preferredHostKeyAlgorithms,
  readKnownHostKeys,
  knownHostsLine,
  trustCommand,
} from '../../../relay/host-keys.ts';
import type { HostKeyPolicy, KnownHostKey } from '../../../relay/host-keys.ts';

interface TestKey {
  pubFile: string;
  keyType: string;
  base64: string;
  blob: Buffer;
  /** "type base64" as it appears in known_hosts */
  entry: string;
}

function sshKeygen(args: string[]): string {
  try {
    return execFileSync('ssh-keygen', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    if (typeof err === 'object' && err !== null && 'code' in err && err.code === 'ENOENT') {
      throw new Error('ssh-keygen not found; these tests need it: apt-get install -y openssh-client');
    }
    throw err;
  }
}

let dir: string;
let fileCounter = 0;
const keys: Record<'ed25519' | 'ed25519b' | 'rsa' | 'ecdsa', TestKey> = {} as Record<'ed25519' | 'ed25519b' | 'rsa' | 'ecdsa', TestKey>;

function makeKey(name: string, args: string[]): TestKey {
  const file = join(dir, name);
  sshKeygen(['-q', ...args, '-N', '', '-C', `${name}@test`, '-f', file]);
  const [keyType, base64] = readFileSync(`${file}.pub`, 'utf8').trim().split(' ');
  if (keyType === undefined || base64 === undefined) throw new Error(`bad public key file for ${name}`);
  return { pubFile: `${file}.pub`, keyType, base64, blob: Buffer.from(base64, 'base64'), entry: `${keyType} ${base64}` };
}

function tmpFile(contents: string): string {
  const file = join(dir, `known_hosts_${++fileCounter}`);
  writeFileSync(file, contents);
  return file;
}

/** Runs the lines through `ssh-keygen -H`, as an operator with HashKnownHosts would have them. */
function hashedKnownHosts(lines: string[]): string {
  const file = tmpFile(lines.join('\n') + '\n');
  sshKeygen(['-H', '-f', file]);
  const text = readFileSync(file, 'utf8');
  expect(text).toMatch(/^\|1\|/);
  return text;
}

function policy(overrides: Partial<HostKeyPolicy>): HostKeyPolicy {
  return {
    host: 'server.example',
    port: 22,
    strict: true,
    knownHostsFiles: [],
    recordFile: join(dir, `unused_record_${++fileCounter}`),
    ...overrides,
  };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'host-keys-test-'));
  keys.ed25519 = makeKey('ed25519', ['-t', 'ed25519']);
  keys.ed25519b = makeKey('ed25519b', ['-t', 'ed25519']);
  keys.rsa = makeKey('rsa', ['-t', 'rsa', '-b', '2048']);
  keys.ecdsa = makeKey('ecdsa', ['-t', 'ecdsa']);
});

afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('keyTypeOfBlob', () => {
  it('reads the key type from real ed25519, rsa and ecdsa blobs', () => {
    expect(keyTypeOfBlob(keys.ed25519.blob)).toBe('ssh-ed25519');
    expect(keyTypeOfBlob(keys.rsa.blob)).toBe('ssh-rsa');
    expect(keyTypeOfBlob(keys.ecdsa.blob)).toBe('ecdsa-sha2-nistp256');
  });

  it('throws on a blob too short for its length prefix', () => {
    expect(() => keyTypeOfBlob(Buffer.from([0, 0]))).toThrow(/malformed/);
    expect(() => keyTypeOfBlob(Buffer.from([0, 0, 0, 20, 0x61]))).toThrow(/malformed/);
    expect(() => keyTypeOfBlob(Buffer.from([0, 0, 0, 0]))).toThrow(/malformed/);
  });

  it('throws when the key type contains non-printable bytes', () => {
    expect(() => keyTypeOfBlob(Buffer.from([0, 0, 0, 2, 0x61, 0x0a]))).toThrow(/malformed/);
  });
});

describe('fingerprintSha256', () => {
  it('prints exactly what ssh-keygen -lf prints for each key type', () => {
    for (const key of [keys.ed25519, keys.rsa, keys.ecdsa]) {
      const expected = sshKeygen(['-l', '-E', 'sha256', '-f', key.pubFile]).split(' ')[1];
      expect(fingerprintSha256(key.blob)).toBe(expected);
      expect(fingerprintSha256(key.blob)).not.toMatch(/=$/);
    }
  });
});

describe('knownHostsName', () => {
  it('uses the bare host on port 22 and [host]:port otherwise', () => {
    expect(knownHostsName('example.com', 22)).toBe('example.com');
    expect(knownHostsName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222');
    expect(knownHostsName('::1', 2200)).toBe('[::1]:2200');
  });
});

describe('findKnownHostKeys', () => {
  it('matches a plain host entry and reports file and line', () => {
    const text = `# comment\n\nother.example ${keys.rsa.entry}\nserver.example ${keys.ed25519.entry} a comment\n`;
    const found = findKnownHostKeys(text, '/kh', 'server.example', 22);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ keyType: 'ssh-ed25519', file: '/kh', line: 4 });
    expect(found[0]?.blob.equals(keys.ed25519.blob)).toBe(true);
    expect(found[0]?.marker).toBeUndefined();
  });

  it('matches host names case-insensitively in both directions', () => {
    const text = `Server.EXAMPLE ${keys.ed25519.entry}\n`;
    expect(findKnownHostKeys(text, 'f', 'server.example', 22)).toHaveLength(1);
    expect(findKnownHostKeys(text, 'f', 'SERVER.example', 22)).toHaveLength(1);
  });

  it('matches any name in a comma-separated list', () => {
    const text = `alias,server.example,10.0.0.5 ${keys.ed25519.entry}\n`;
    expect(findKnownHostKeys(text, 'f', '10.0.0.5', 22)).toHaveLength(1);
    expect(findKnownHostKeys(text, 'f', 'alias', 22)).toHaveLength(1);
    expect(findKnownHostKeys(text, 'f', 'nope', 22)).toHaveLength(0);
  });

  it('does not match a plain port-22 entry when connecting on another port', () => {
    const text = `server.example ${keys.ed25519.entry}\n`;
    expect(findKnownHostKeys(text, 'f', 'server.example', 2222)).toHaveLength(0);
    const bracketed = `[server.example]:2222 ${keys.ed25519.entry}\n`;
    expect(findKnownHostKeys(bracketed, 'f', 'server.example', 2222)).toHaveLength(1);
    expect(findKnownHostKeys(bracketed, 'f', 'server.example', 22)).toHaveLength(0);
    expect(findKnownHostKeys(bracketed, 'f', 'server.example', 2200)).toHaveLength(0);
  });

  it('matches a hashed entry produced by ssh-keygen -H on port 22', () => {
    const text = hashedKnownHosts([`server.example ${keys.ed25519.entry}`]);
    expect(text).not.toContain('server.example');
    expect(findKnownHostKeys(text, 'f', 'server.example', 22)).toHaveLength(1);
    expect(findKnownHostKeys(text, 'f', 'Server.Example', 22)).toHaveLength(1);
    expect(findKnownHostKeys(text, 'f', 'other.example', 22)).toHaveLength(0);
    expect(findKnownHostKeys(text, 'f', 'server.example', 2222)).toHaveLength(0);
  });

  it('matches a hashed [host]:port entry only on that port', () => {
    const text = hashedKnownHosts([`[127.0.0.1]:2222 ${keys.ecdsa.entry}`]);
    expect(findKnownHostKeys(text, 'f', '127.0.0.1', 2222)).toHaveLength(1);
    expect(findKnownHostKeys(text, 'f', '127.0.0.1', 22)).toHaveLength(0);
    expect(findKnownHostKeys(text, 'f', '127.0.0.1', 2223)).toHaveLength(0);
  });

  it('agrees with ssh-keygen -F on hashed entries', () => {
    const text = hashedKnownHosts([`[10.1.2.3]:2022 ${keys.rsa.entry}`, `10.1.2.3 ${keys.ed25519.entry}`]);
    const file = tmpFile(text);
    const lookup = (name: string): boolean => {
      try {
        return sshKeygen(['-F', name, '-f', file]).includes('found');
      } catch {
        return false; // ssh-keygen -F exits 1 when nothing is found
      }
    };
    for (const [host, port] of [
      ['10.1.2.3', 2022],
      ['10.1.2.3', 22],
      ['10.1.2.3', 2023],
    ] as const) {
      expect(findKnownHostKeys(text, file, host, port).length > 0).toBe(lookup(knownHostsName(host, port)));
    }
  });

  it('matches * and ? wildcards, including against the bracketed [host]:port form', () => {
    const text = [`*.example.com ${keys.ed25519.entry}`, `10.0.0.? ${keys.rsa.entry}`, `[192.168.1.*]:2222 ${keys.ecdsa.entry}`].join('\n');
    expect(findKnownHostKeys(text, 'f', 'a.b.example.com', 22).map((k) => k.keyType)).toEqual(['ssh-ed25519']);
    expect(findKnownHostKeys(text, 'f', 'example.com', 22)).toHaveLength(0);
    expect(findKnownHostKeys(text, 'f', '10.0.0.7', 22).map((k) => k.keyType)).toEqual(['ssh-rsa']);
    expect(findKnownHostKeys(text, 'f', '10.0.0.17', 22)).toHaveLength(0);
    expect(findKnownHostKeys(text, 'f', '192.168.1.40', 2222).map((k) => k.keyType)).toEqual(['ecdsa-sha2-nistp256']);
    expect(findKnownHostKeys(text, 'f', '192.168.1.40', 22)).toHaveLength(0);
  });

  it('treats a plain * entry as matching the bracketed name for non-22 ports too', () => {
    const text = `* ${keys.ed25519.entry}\n`;
    expect(findKnownHostKeys(text, 'f', 'anything', 2222)).toHaveLength(1);
  });

  it('lets a matching negated pattern veto the line even when another pattern matches', () => {
    const text = `*.example.com,!secret.example.com ${keys.ed25519.entry}\n`;
    expect(findKnownHostKeys(text, 'f', 'www.example.com', 22)).toHaveLength(1);
    expect(findKnownHostKeys(text, 'f', 'secret.example.com', 22)).toHaveLength(0);
    expect(findKnownHostKeys(text, 'f', 'SECRET.example.com', 22)).toHaveLength(0);
  });

  it('does not match a line made only of negated patterns', () => {
    const text = `!secret.example.com ${keys.ed25519.entry}\n`;
    expect(findKnownHostKeys(text, 'f', 'www.example.com', 22)).toHaveLength(0);
  });

  it('reads @revoked and @cert-authority markers', () => {
    const text = `@revoked * ${keys.rsa.entry}\n@cert-authority *.example ${keys.ecdsa.entry}\n`;
    const found = findKnownHostKeys(text, 'f', 'server.example', 22);
    expect(found.map((k) => k.marker)).toEqual(['revoked', 'cert-authority']);
  });

  it('ignores malformed lines without throwing', () => {
    const good = `server.example ${keys.ed25519.entry}`;
    const text = [
      'server.example',
      'server.example ssh-ed25519',
      'server.example ssh-ed25519 !!!not-base64!!!',
      `server.example ssh-rsa ${keys.ed25519.base64}`, // type field disagrees with blob
      `server.example ssh-ed25519 ${keys.ed25519.base64.slice(0, 8)}`, // truncated blob
      'server.example ssh-ed25519 AAAA',
      `@bogus server.example ${keys.ed25519.entry}`,
      `@revoked ${keys.ed25519.entry}`, // marker with no hosts field
      '|1|notbase64|alsonot ssh-ed25519 ' + keys.ed25519.base64,
      `|1|${Buffer.alloc(5).toString('base64')}|${Buffer.alloc(20).toString('base64')} ${keys.ed25519.entry}`,
      '   ',
      '\t# indented comment',
      good + '\r',
    ].join('\n');
    const found = findKnownHostKeys(text, 'f', 'server.example', 22);
    expect(found).toHaveLength(1);
    expect(found[0]?.line).toBe(13);
  });
});

describe('readKnownHostKeys', () => {
  it('reads files in order and skips missing ones', () => {
    const a = tmpFile(`server.example ${keys.ed25519.entry}\n`);
    const b = tmpFile(`server.example ${keys.rsa.entry}\n`);
    const found = readKnownHostKeys([a, join(dir, 'does-not-exist'), join(dir, 'no-dir', 'kh'), b], 'server.example', 22);
    expect(found.map((k) => [k.file, k.keyType])).toEqual([
      [a, 'ssh-ed25519'],
      [b, 'ssh-rsa'],
    ]);
  });

  it('throws when a file exists but cannot be read', () => {
    const sub = join(dir, `a-directory-${++fileCounter}`);
    mkdirSync(sub);
    expect(() => readKnownHostKeys([sub], 'server.example', 22)).toThrow();
  });
});

describe('decideHostKey', () => {
  it('accepts a key listed for the host without recording it', () => {
    const kh = tmpFile(`server.example ${keys.rsa.entry}\nserver.example ${keys.ed25519.entry}\n`);
    expect(decideHostKey(policy({ knownHostsFiles: [kh] }), keys.ed25519.blob)).toEqual({ ok: true, recorded: false });
  });

  it('accepts a key found only in the second known_hosts file', () => {
    const empty = tmpFile('');
    const kh = tmpFile(hashedKnownHosts([`[127.0.0.1]:2222 ${keys.ed25519.entry}`]));
    expect(decideHostKey(policy({ host: '127.0.0.1', port: 2222, knownHostsFiles: [empty, kh] }), keys.ed25519.blob)).toEqual({
      ok: true,
      recorded: false,
    });
  });

  it('refuses an unknown host under strict checking and writes nothing', () => {
    const recordFile = join(dir, `strict-record-${++fileCounter}`, 'known_hosts');
    const decision = decideHostKey(policy({ knownHostsFiles: [join(dir, 'missing'), recordFile], recordFile }), keys.ed25519.blob);
    expect(decision).toEqual({
      ok: false,
      reason: 'unknown',
      keyType: 'ssh-ed25519',
      fingerprint: fingerprintSha256(keys.ed25519.blob),
      knownFingerprints: [],
      line: `server.example ${keys.ed25519.entry}`,
    });
    expect(() => statSync(recordFile)).toThrow();
  });

  it('records an unknown key under accept-new, with a 0700 directory and 0600 file, then accepts it next time', () => {
    const recordDir = join(dir, `relay-state-${++fileCounter}`);
    const recordFile = join(recordDir, 'known_hosts');
    const p = policy({ host: '127.0.0.1', port: 2222, strict: false, knownHostsFiles: [recordFile], recordFile });

    expect(decideHostKey(p, keys.ed25519.blob)).toEqual({ ok: true, recorded: true });
    expect(statSync(recordFile).mode & 0o777).toBe(0o600);
    expect(statSync(recordDir).mode & 0o777).toBe(0o700);
    expect(readFileSync(recordFile, 'utf8')).toBe(`[127.0.0.1]:2222 ${keys.ed25519.entry}\n`);

    expect(decideHostKey(p, keys.ed25519.blob)).toEqual({ ok: true, recorded: false });
    expect(decideHostKey({ ...p, strict: true }, keys.ed25519.blob)).toEqual({ ok: true, recorded: false });
  });

  it('writes a recorded key that ssh-keygen itself can find and fingerprint', () => {
    const recordFile = join(dir, `relay-state-${++fileCounter}`, 'known_hosts');
    decideHostKey(policy({ host: '127.0.0.1', port: 2222, strict: false, recordFile }), keys.rsa.blob);
    const out = sshKeygen(['-F', '[127.0.0.1]:2222', '-l', '-f', recordFile]);
    expect(out).toContain(fingerprintSha256(keys.rsa.blob));
  });

  it('starts the recorded entry on a new line when the file lacks a trailing newline', () => {
    const recordFile = tmpFile(`other.example ${keys.rsa.entry}`);
    decideHostKey(policy({ strict: false, knownHostsFiles: [recordFile], recordFile }), keys.ed25519.blob);
    expect(readFileSync(recordFile, 'utf8')).toBe(`other.example ${keys.rsa.entry}\nserver.example ${keys.ed25519.entry}\n`);
  });

  it('refuses a changed key of the same type under strict checking', () => {
    const kh = tmpFile(`server.example ${keys.ed25519.entry}\n`);
    expect(decideHostKey(policy({ knownHostsFiles: [kh] }), keys.ed25519b.blob)).toEqual({
      ok: false,
      reason: 'changed',
      keyType: 'ssh-ed25519',
      fingerprint: fingerprintSha256(keys.ed25519b.blob),
      knownFingerprints: [fingerprintSha256(keys.ed25519.blob)],
      line: `server.example ${keys.ed25519b.entry}`,
    });
  });

  it('refuses a changed key even when strict checking is off, and does not record it', () => {
    const kh = tmpFile(`server.example ${keys.ed25519.entry}\n`);
    const before = readFileSync(kh, 'utf8');
    const decision = decideHostKey(policy({ strict: false, knownHostsFiles: [kh], recordFile: kh }), keys.ed25519b.blob);
    expect(decision).toMatchObject({ ok: false, reason: 'changed' });
    expect(readFileSync(kh, 'utf8')).toBe(before);
  });

  it('refuses a key of a different type than the known one, in both modes', () => {
    const kh = tmpFile(`server.example ${keys.rsa.entry}\n`);
    for (const strict of [true, false]) {
      expect(decideHostKey(policy({ strict, knownHostsFiles: [kh], recordFile: kh }), keys.ed25519.blob)).toMatchObject({
        ok: false,
        reason: 'changed',
        keyType: 'ssh-ed25519',
        knownFingerprints: [fingerprintSha256(keys.rsa.blob)],
      });
    }
  });

  it('refuses a revoked key even when it is also listed as known', () => {
    const kh = tmpFile(`server.example ${keys.ed25519.entry}\n@revoked * ${keys.ed25519.entry}\n`);
    expect(decideHostKey(policy({ strict: false, knownHostsFiles: [kh] }), keys.ed25519.blob)).toMatchObject({
      ok: false,
      reason: 'revoked',
      keyType: 'ssh-ed25519',
    });
  });

  it('refuses a revoked key for an otherwise unknown host instead of recording it', () => {
    const recordFile = join(dir, `revoked-record-${++fileCounter}`);
    const kh = tmpFile(`@revoked * ${keys.ecdsa.entry}\n`);
    expect(decideHostKey(policy({ strict: false, knownHostsFiles: [kh], recordFile }), keys.ecdsa.blob)).toMatchObject({
      ok: false,
      reason: 'revoked',
    });
    expect(() => statSync(recordFile)).toThrow();
  });

  it('does not treat @cert-authority lines as known keys for the host', () => {
    const kh = tmpFile(`@cert-authority server.example ${keys.rsa.entry}\n`);
    expect(decideHostKey(policy({ knownHostsFiles: [kh] }), keys.rsa.blob)).toMatchObject({ ok: false, reason: 'unknown' });
  });

  it('accepts a pinned fingerprint without consulting known_hosts entries', () => {
    const kh = tmpFile(`server.example ${keys.rsa.entry}\n`);
    const p = policy({ knownHostsFiles: [kh], pinnedFingerprints: [fingerprintSha256(keys.ed25519.blob)] });
    expect(decideHostKey(p, keys.ed25519.blob)).toEqual({ ok: true, recorded: false });
  });

  it('accepts a pinned fingerprint written with base64 padding', () => {
    const p = policy({ pinnedFingerprints: [`${fingerprintSha256(keys.ed25519.blob)}=`] });
    expect(decideHostKey(p, keys.ed25519.blob)).toEqual({ ok: true, recorded: false });
  });

  it('refuses a key that matches no pinned fingerprint as changed, even if known_hosts lists it', () => {
    const kh = tmpFile(`server.example ${keys.ed25519.entry}\n`);
    const pin = fingerprintSha256(keys.rsa.blob);
    const p = policy({ strict: false, knownHostsFiles: [kh], pinnedFingerprints: [pin] });
    expect(decideHostKey(p, keys.ed25519.blob)).toEqual({
      ok: false,
      reason: 'changed',
      keyType: 'ssh-ed25519',
      fingerprint: fingerprintSha256(keys.ed25519.blob),
      knownFingerprints: [pin],
      line: `server.example ${keys.ed25519.entry}`,
    });
  });

  it('still refuses a revoked key when it is pinned', () => {
    const kh = tmpFile(`@revoked * ${keys.ed25519.entry}\n`);
    const p = policy({ knownHostsFiles: [kh], pinnedFingerprints: [fingerprintSha256(keys.ed25519.blob)] });
    expect(decideHostKey(p, keys.ed25519.blob)).toMatchObject({ ok: false, reason: 'revoked' });
  });

  it('refuses a malformed key blob under accept-new without recording it', () => {
    const recordFile = join(dir, `malformed-record-${++fileCounter}`);
    const decision = decideHostKey(policy({ strict: false, recordFile }), Buffer.from([0, 0, 0, 99, 1]));
    expect(decision).toMatchObject({ ok: false, reason: 'unknown' });
    expect(() => statSync(recordFile)).toThrow();
  });

  it('refuses to record a host name that would read back as a pattern', () => {
    const recordFile = join(dir, `pattern-record-${++fileCounter}`);
    for (const host of ['*', 'a,b', 'evil host', 'x\n* ssh-ed25519 AAAA']) {
      expect(decideHostKey(policy({ host, strict: false, recordFile }), keys.ed25519.blob)).toMatchObject({
        ok: false,
        reason: 'unknown',
      });
    }
    expect(() => statSync(recordFile)).toThrow();
  });
});

describe('preferredHostKeyAlgorithms', () => {
  const defaults = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  const known = (keyType: string, marker?: KnownHostKey['marker']): KnownHostKey => {
    const k: KnownHostKey = { keyType, blob: Buffer.alloc(0), file: 'f', line: 1 };
    if (marker !== undefined) k.marker = marker;
    return k;
  };

  it('puts all RSA signature algorithms first when an ssh-rsa key is known', () => {
    expect(preferredHostKeyAlgorithms([known('ssh-rsa')], defaults)).toEqual([
      'rsa-sha2-512',
      'rsa-sha2-256',
      'ssh-rsa',
      'ssh-ed25519',
      'ecdsa-sha2-nistp256',
      'ecdsa-sha2-nistp384',
      'ecdsa-sha2-nistp521',
    ]);
  });

  it('prefers only the ECDSA curve that is known', () => {
    expect(preferredHostKeyAlgorithms([known('ecdsa-sha2-nistp384')], defaults)).toEqual([
      'ecdsa-sha2-nistp384',
      'ssh-ed25519',
      'ecdsa-sha2-nistp256',
      'ecdsa-sha2-nistp521',
      'rsa-sha2-512',
      'rsa-sha2-256',
      'ssh-rsa',
    ]);
  });

  it('keeps the default relative order among several known types', () => {
    expect(preferredHostKeyAlgorithms([known('ssh-rsa'), known('ecdsa-sha2-nistp256')], defaults)).toEqual([
      'ecdsa-sha2-nistp256',
      'rsa-sha2-512',
      'rsa-sha2-256',
      'ssh-rsa',
      'ssh-ed25519',
      'ecdsa-sha2-nistp384',
      'ecdsa-sha2-nistp521',
    ]);
  });

  it('leaves the defaults untouched when nothing usable is known', () => {
    expect(preferredHostKeyAlgorithms([], defaults)).toEqual(defaults);
    expect(preferredHostKeyAlgorithms([known('ssh-rsa', 'revoked'), known('ssh-rsa', 'cert-authority')], defaults)).toEqual(defaults);
  });

  it('orders by the key types read from real known_hosts entries', () => {
    const found = findKnownHostKeys(`h ${keys.ecdsa.entry}\n`, 'f', 'h', 22);
    expect(preferredHostKeyAlgorithms(found, defaults)[0]).toBe('ecdsa-sha2-nistp256');
  });
});

describe('trustCommand', () => {
  it('appends the exact key line, creating the folder that a fresh machine lacks, and decideHostKey then trusts it', () => {
    const home = mkdtempSync(join(dir, 'fresh-home-'));
    const file = join(home, '.local', 'state', 'mcp-remote-exec', 'known_hosts');
    const line = knownHostsLine('127.0.0.1', 2222, keys.ed25519.blob);
    expect(line).toBe(`[127.0.0.1]:2222 ${keys.ed25519.entry}`);
    const command = trustCommand(line ?? '', file);
    execFileSync('sh', ['-c', command]);
    expect(readFileSync(file, 'utf8')).toBe(`${line}\n`);
    expect(decideHostKey(policy({ host: '127.0.0.1', port: 2222, knownHostsFiles: [file] }), keys.ed25519.blob)).toEqual({ ok: true, recorded: false });
  });

  it('single-quotes a path with a quote and a blank so the shell sees it verbatim', () => {
    const home = mkdtempSync(join(dir, "o'brien home-"));
    const file = join(home, 'known hosts');
    const line = knownHostsLine('h', 22, keys.ed25519.blob) ?? '';
    execFileSync('sh', ['-c', trustCommand(line, file)]);
    expect(readFileSync(file, 'utf8')).toBe(`${line}\n`);
  });

  it('writes a host name with shell syntax in it as plain text, running nothing', () => {
    const home = mkdtempSync(join(dir, 'shell-host-'));
    const marker = join(home, 'ran');
    // No blank in it (that would make it no plain known_hosts name): ${IFS} stands for one.
    const host = `h';touch\${IFS}${marker};'$(touch\${IFS}${marker})\`touch\${IFS}${marker}\``;
    const file = join(home, 'kh');
    const line = knownHostsLine(host, 22, keys.ed25519.blob) ?? '';
    execFileSync('sh', ['-c', trustCommand(line, file)]);
    expect(readFileSync(file, 'utf8')).toBe(`${host} ${keys.ed25519.entry}\n`);
    expect(() => statSync(marker)).toThrow();
  });

  it('gives no line for a host name that known_hosts would read as a pattern, nor for a malformed key', () => {
    for (const host of ['a;b c', '*.example', 'a,b', '!h', '', 'h\nevil']) expect(knownHostsLine(host, 22, keys.ed25519.blob)).toBeUndefined();
    expect(knownHostsLine('h', 22, Buffer.from('not a key'))).toBeUndefined();
  });

  it('carries the known_hosts line of the offered key in a refused decision', () => {
    const decision = decideHostKey(policy({ host: '127.0.0.1', port: 2222 }), keys.ed25519.blob);
    expect(decision).toMatchObject({ ok: false, reason: 'unknown', line: `[127.0.0.1]:2222 ${keys.ed25519.entry}` });
  });
});
