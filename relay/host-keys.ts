// Host key verification modelled on OpenSSH's known_hosts handling, for use
// from ssh2's `hostVerifier` (which receives the raw public-key blob when
// `hostHash` is unset).

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { appendFileSync, closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync } from 'node:fs';
import { dirname } from 'node:path';
import { quoteShellWord } from '../shared/shell-quote.ts';

export interface KnownHostKey {
  keyType: string;
  blob: Buffer;
  marker?: 'revoked' | 'cert-authority';
  file: string;
  line: number;
}

export type HostKeyDecision =
  | { ok: true; recorded: boolean }
  | {
      ok: false;
      reason: 'unknown' | 'changed' | 'revoked';
      keyType: string;
      fingerprint: string;
      knownFingerprints: string[];
      /** The known_hosts line for the offered key (undefined when it cannot be written as one). */
      line: string | undefined;
    };

export interface HostKeyPolicy {
  host: string;
  port: number;
  /** false = accept-new: record an unknown key, still refuse a changed one. */
  strict: boolean;
  /** Read in order, e.g. ~/.ssh/known_hosts and the relay's own file. */
  knownHostsFiles: string[];
  /** Where accept-new appends a newly seen key. */
  recordFile: string;
  /** "SHA256:..." — if non-empty, the key must match one of them and known_hosts is not used to accept. */
  pinnedFingerprints?: string[];
}

const DEFAULT_PORT = 22;
const HASH_MAGIC = '|1|';
// OpenSSH requires the salt to be exactly one SHA-1 block long.
const SHA1_LEN = 20;

export function keyTypeOfBlob(blob: Buffer): string {
  if (blob.length < 4) throw new Error('malformed SSH public key: too short for a length prefix');
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > blob.length - 4) {
    throw new Error('malformed SSH public key: bad key type length');
  }
  const type = blob.subarray(4, 4 + len);
  // Key type names are printable ASCII without spaces; anything else means we
  // are not looking at a key blob, and letting it through could inject text
  // into known_hosts lines or operator messages.
  for (const byte of type) {
    if (byte < 0x21 || byte > 0x7e) throw new Error('malformed SSH public key: non-printable key type');
  }
  return type.toString('latin1');
}

export function fingerprintSha256(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

export function knownHostsName(host: string, port: number): string {
  // OpenSSH's put_host_port() also treats port 0 as "default".
  if (port === DEFAULT_PORT || port === 0) return host;
  return `[${host}]:${port}`;
}

/** OpenSSH match_pattern(): `*` is any run of characters, `?` exactly one. */
export function globMatch(text: string, pattern: string): boolean {
  // Iterative matcher with single-star backtracking; avoids the exponential
  // blow-up a naive recursive matcher has on patterns like `*a*a*a*b`.
  let t = 0;
  let p = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    const pc = pattern[p];
    if (pc === '?' || (pc !== undefined && pc !== '*' && pc === text[t])) {
      t++;
      p++;
    } else if (pc === '*') {
      starP = p++;
      starT = t;
    } else if (starP !== -1) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

/**
 * OpenSSH match_pattern_list() semantics: 1 = a positive pattern matched and no
 * negated one did, -1 = a negated pattern matched (which vetoes the line), 0 = no match.
 */
export function matchPatternList(name: string, list: string): -1 | 0 | 1 {
  let positive = false;
  for (const raw of list.split(',')) {
    if (raw === '') continue;
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase();
    if (globMatch(name, pattern)) {
      if (negated) return -1;
      positive = true;
    }
  }
  return positive ? 1 : 0;
}

const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

function decodeStrictBase64(text: string): Buffer | undefined {
  // Buffer.from(..., 'base64') silently skips junk, which would let a corrupt
  // line decode to some other key.
  if (!BASE64_RE.test(text) || text.length % 4 === 1) return undefined;
  return Buffer.from(text, 'base64');
}

function matchHashed(name: string, field: string): boolean {
  // The whole hosts field is one hash; OpenSSH does not split hashed entries on commas.
  const parts = field.slice(HASH_MAGIC.length).split('|');
  if (parts.length !== 2) return false;
  const salt = decodeStrictBase64(parts[0] ?? '');
  const expected = decodeStrictBase64(parts[1] ?? '');
  if (salt === undefined || expected === undefined || salt.length !== SHA1_LEN) return false;
  const actual = createHmac('sha1', salt).update(name).digest();
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

function hostFieldMatches(name: string, field: string): boolean {
  if (field.startsWith('|')) return field.startsWith(HASH_MAGIC) && matchHashed(name, field);
  return matchPatternList(name, field) === 1;
}

export function findKnownHostKeys(text: string, file: string, host: string, port: number): KnownHostKey[] {
  // ssh lowercases the destination before looking it up, and `ssh-keygen -H`
  // lowercases names before hashing them, so hashes are of the lowercase form.
  const name = knownHostsName(host, port).toLowerCase();
  const found: KnownHostKey[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const fields = (lines[i] ?? '').trim().split(/[ \t]+/);
    if (fields[0] === undefined || fields[0] === '' || fields[0].startsWith('#')) continue;

    let marker: KnownHostKey['marker'];
    if (fields[0].startsWith('@')) {
      const m = fields.shift();
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      // OpenSSH rejects the whole line for an unknown marker rather than
      // ignoring the marker, which would silently widen trust.
      else continue;
    }
    const [hosts, keyType, keyText] = fields;
    if (hosts === undefined || keyType === undefined || keyText === undefined) continue;
    if (!hostFieldMatches(name, hosts)) continue;

    const blob = decodeStrictBase64(keyText);
    if (blob === undefined) continue;
    let blobType: string;
    try {
      blobType = keyTypeOfBlob(blob);
    } catch {
      continue;
    }
    if (blobType !== keyType) continue;

    const entry: KnownHostKey = { keyType, blob, file, line: i + 1 };
    if (marker !== undefined) entry.marker = marker;
    found.push(entry);
  }
  return found;
}

function isErrnoCode(err: unknown, ...codes: string[]): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' && codes.includes(err.code);
}

export function readKnownHostKeys(files: string[], host: string, port: number): KnownHostKey[] {
  const found: KnownHostKey[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      // ENOTDIR: a path component is a file, so the known_hosts file cannot exist either.
      if (isErrnoCode(err, 'ENOENT', 'ENOTDIR')) continue;
      throw err;
    }
    found.push(...findKnownHostKeys(text, file, host, port));
  }
  return found;
}

function normalizeFingerprint(fp: string): string {
  return fp.trim().replace(/=+$/, '');
}

// A name with any of these would either break the known_hosts line format or
// be read back as a pattern that matches more hosts than the one we saw.
const UNRECORDABLE_NAME = /[\s,#*?!|@\x00-\x1f\x7f]/;

function recordKey(file: string, name: string, keyType: string, blob: Buffer): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const fd = openSync(file, 'a+', 0o600);
  try {
    // Appending to a file whose last line lacks a newline would glue our entry
    // onto it and corrupt both.
    let prefix = '';
    const size = fstatSync(fd).size;
    if (size > 0) {
      const last = Buffer.alloc(1);
      readSync(fd, last, 0, 1, size - 1);
      if (last[0] !== 0x0a) prefix = '\n';
    }
    appendFileSync(fd, `${prefix}${name} ${keyType} ${blob.toString('base64')}\n`);
  } finally {
    closeSync(fd);
  }
}

export function decideHostKey(policy: HostKeyPolicy, blob: Buffer): HostKeyDecision {
  const fingerprint = fingerprintSha256(blob);
  let keyType: string;
  let wellFormed = true;
  try {
    keyType = keyTypeOfBlob(blob);
  } catch {
    // Refuse rather than throw: this runs inside ssh2's handshake, and a
    // garbage key must never reach known_hosts.
    keyType = 'malformed';
    wellFormed = false;
  }
  const refuse = (reason: 'unknown' | 'changed' | 'revoked', knownFingerprints: string[]): HostKeyDecision => ({
    ok: false,
    reason,
    keyType,
    fingerprint,
    knownFingerprints,
    line: wellFormed ? knownHostsLine(policy.host, policy.port, blob) : undefined,
  });

  const known = readKnownHostKeys(policy.knownHostsFiles, policy.host, policy.port);
  const usable = known.filter((k) => k.marker === undefined);
  const usableFingerprints = [...new Set(usable.map((k) => fingerprintSha256(k.blob)))];

  // Revocation is checked even when pinned: a revoked key is known-compromised,
  // and a stale pin must not override that.
  if (known.some((k) => k.marker === 'revoked' && k.blob.equals(blob))) {
    return refuse('revoked', usableFingerprints);
  }

  const pins = (policy.pinnedFingerprints ?? []).map(normalizeFingerprint).filter((p) => p !== '');
  if (pins.length > 0) {
    return pins.includes(fingerprint) ? { ok: true, recorded: false } : refuse('changed', pins);
  }

  if (usable.some((k) => k.blob.equals(blob))) return { ok: true, recorded: false };
  // Stricter than OpenSSH, which would treat a key of a not-yet-known type as
  // new: we put known key types first in the algorithm list, so a server that
  // still held the known key would have presented it.
  if (usable.length > 0) return refuse('changed', usableFingerprints);

  const name = knownHostsName(policy.host, policy.port);
  if (policy.strict || !wellFormed || policy.host === '' || UNRECORDABLE_NAME.test(policy.host)) {
    return refuse('unknown', []);
  }
  recordKey(policy.recordFile, name, keyType, blob);
  return { ok: true, recorded: true };
}

/** Key type of the host key an algorithm signs with; undefined for certificate algorithms. */
function keyTypeOfAlgorithm(alg: string): string | undefined {
  if (alg === 'rsa-sha2-256' || alg === 'rsa-sha2-512') return 'ssh-rsa';
  // ssh2 cannot verify host certificates, and plain known_hosts entries never
  // vouch for them anyway.
  if (alg.includes('-cert-')) return undefined;
  return alg;
}

export function preferredHostKeyAlgorithms(known: KnownHostKey[], defaults: string[]): string[] {
  // As OpenSSH's order_hostkeyalgs(): only plain entries count; revoked and CA lines do not.
  const knownTypes = new Set(known.filter((k) => k.marker === undefined).map((k) => k.keyType));
  const first: string[] = [];
  const rest: string[] = [];
  for (const alg of defaults) {
    const type = keyTypeOfAlgorithm(alg);
    (type !== undefined && knownTypes.has(type) ? first : rest).push(alg);
  }
  return [...first, ...rest];
}

function shellWord(word: string): string {
  return /^[A-Za-z0-9_.:@%+=,/-]+$/.test(word) ? word : quoteShellWord(word);
}

/**
 * The known_hosts line for `blob` as offered by host:port, or undefined when it cannot be written
 * as a plain entry: a malformed key, or a host name that would be read back as a pattern.
 */
export function knownHostsLine(host: string, port: number, blob: Buffer): string | undefined {
  if (host === '' || UNRECORDABLE_NAME.test(host)) return undefined;
  let keyType: string;
  try {
    keyType = keyTypeOfBlob(blob);
  } catch {
    return undefined;
  }
  return `${knownHostsName(host, port)} ${keyType} ${blob.toString('base64')}`;
}

/**
 * A command that trusts exactly the key the relay saw: it appends `line` to `knownHostsFile`,
 * creating the folder first (on a fresh machine it does not exist yet). Unlike ssh-keyscan, it
 * does not fetch the key again, so what is trusted is what the fingerprint shown was checked for.
 */
export function trustCommand(line: string, knownHostsFile: string): string {
  return `mkdir -p ${shellWord(dirname(knownHostsFile))} && printf '%s\\n' ${quoteShellWord(line)} >> ${shellWord(knownHostsFile)}`;
}
