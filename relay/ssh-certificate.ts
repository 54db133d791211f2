/**
 * Logging in with an OpenSSH user certificate (a private key plus the `-cert.pub` a CA signed for it,
 * `ssh-keygen -s`), which ssh2 1.17.0 cannot do on its own: it has no option for a certificate and
 * its Protocol.authPK writes one algorithm name into both places of the publickey request, while
 * OpenSSH needs the certificate's name (`ssh-ed25519-cert-v01@openssh.com`) beside the certificate
 * and the plain signature name (`ssh-ed25519`, `rsa-sha2-256`) inside the signature (RFC 4252 §7,
 * PROTOCOL.certkeys). So, for a connection that uses a certificate, and only for it, this file
 * replaces that one method on that connection's protocol object with one that writes the request
 * as OpenSSH expects. Key parsing, signing, RSA hash choice (server-sig-algs) and retries stay
 * ssh2's; if the host refuses the certificate, the plain key is offered next, as ssh does. The replacement reaches four ssh2 internals; it is pinned to the ssh2 version it was
 * written against, checked when the config is loaded, and covered by test/e2e/ssh-certificate.test.ts
 * against a real sshd with TrustedUserCAKeys.
 *
 * The certificate is also read here, so that a certificate that has expired, is not yet valid, is
 * for a host, or belongs to another key is a clear error naming its validity and principals, and
 * it is read again for every new connection, so a short-lived certificate renewed on disk is used
 * without restarting the relay.
 */
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import ssh2 from 'ssh2';
import type { AuthHandlerMiddleware, AuthenticationType, Client } from 'ssh2';
import { failure, success, type Outcome, type ToolError } from '../shared/errors.ts';
import { ConfigError } from './config-error.ts';

/** The ssh2 version whose Protocol internals `certificateLogin` relies on (lib/protocol/Protocol.js authPK). */
export const SSH2_VERSION_FOR_CERTIFICATES = '1.17.0';
/** OpenSSH certificates are a few KiB (an RSA-16384 one about 5); anything far larger is not one. */
const MAX_CERTIFICATE_FILE_BYTES = 64 * 1024;
/** PROTOCOL.certkeys: the certificate's `type` field. */
const SSH_CERT_TYPE_USER = 1;
/** uint64 max: "valid forever" in valid_before. */
const FOREVER = 0xffff_ffff_ffff_ffffn;
const USERAUTH_REQUEST = 50;

/** Certificate type → the plain key type it certifies, and how many key fields follow the nonce. */
const CERTIFICATE_TYPES: Record<string, { keyType: string; keyFields: number }> = {
  'ssh-ed25519-cert-v01@openssh.com': { keyType: 'ssh-ed25519', keyFields: 1 },
  'ssh-rsa-cert-v01@openssh.com': { keyType: 'ssh-rsa', keyFields: 2 },
  'ecdsa-sha2-nistp256-cert-v01@openssh.com': { keyType: 'ecdsa-sha2-nistp256', keyFields: 2 },
  'ecdsa-sha2-nistp384-cert-v01@openssh.com': { keyType: 'ecdsa-sha2-nistp384', keyFields: 2 },
  'ecdsa-sha2-nistp521-cert-v01@openssh.com': { keyType: 'ecdsa-sha2-nistp521', keyFields: 2 },
};

/**
 * The signature algorithm ssh2 chose (the key type, or rsa-sha2-256/512 for an RSA key when the
 * server lists them in server-sig-algs) → the certificate algorithm named beside the certificate.
 */
const CERTIFICATE_ALGORITHMS: Record<string, string> = {
  'ssh-ed25519': 'ssh-ed25519-cert-v01@openssh.com',
  'ssh-rsa': 'ssh-rsa-cert-v01@openssh.com',
  'rsa-sha2-256': 'rsa-sha2-256-cert-v01@openssh.com',
  'rsa-sha2-512': 'rsa-sha2-512-cert-v01@openssh.com',
  'ecdsa-sha2-nistp256': 'ecdsa-sha2-nistp256-cert-v01@openssh.com',
  'ecdsa-sha2-nistp384': 'ecdsa-sha2-nistp384-cert-v01@openssh.com',
  'ecdsa-sha2-nistp521': 'ecdsa-sha2-nistp521-cert-v01@openssh.com',
};

export interface UserCertificate {
  path: string;
  /** e.g. ssh-ed25519-cert-v01@openssh.com */
  type: string;
  /** The whole certificate, as sent to the server. */
  blob: Buffer;
  /** The certified public key, in the plain key's wire form (as ssh2's getPublicSSH() gives it). */
  publicKey: Buffer;
  keyId: string;
  /** Empty: valid for any principal (which sshd refuses under TrustedUserCAKeys). */
  principals: string[];
  /** Seconds since the epoch (uint64). */
  validAfter: bigint;
  validBefore: bigint;
}

class Reader {
  private offset = 0;
  private readonly data: Buffer;
  constructor(data: Buffer) {
    this.data = data;
  }
  done(): boolean {
    return this.offset === this.data.length;
  }
  bytes(count: number): Buffer {
    if (count > this.data.length - this.offset) throw new Error('it ends early');
    const out = this.data.subarray(this.offset, this.offset + count);
    this.offset += count;
    return out;
  }
  uint32(): number {
    return this.bytes(4).readUInt32BE(0);
  }
  uint64(): bigint {
    return this.bytes(8).readBigUInt64BE(0);
  }
  string(): Buffer {
    return this.bytes(this.uint32());
  }
  /** A length-prefixed field, prefix included (to rebuild the plain key's blob). */
  rawString(): Buffer {
    const start = this.offset;
    this.string();
    return this.data.subarray(start, this.offset);
  }
}

function sshString(value: Buffer | string): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length, 0);
  return Buffer.concat([length, bytes]);
}

/** A principal or key id for a message: quoted, control characters escaped. */
function shown(value: string): string {
  return JSON.stringify(value);
}

/** Parse an OpenSSH certificate file ("<type> <base64> [comment]"); throws an Error saying what is wrong. */
export function parseCertificate(text: string, path: string): UserCertificate {
  const [textType, base64] = text.trim().split(/\s+/);
  if (!textType || !base64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) throw new Error('it is not an OpenSSH certificate ("<type> <base64> [comment]")');
  const kind = CERTIFICATE_TYPES[textType];
  if (!kind) {
    throw new Error(`its type ${shown(textType.slice(0, 80))} is not a certificate type the relay can use (${Object.keys(CERTIFICATE_TYPES).join(', ')})`);
  }
  const blob = Buffer.from(base64, 'base64');
  const reader = new Reader(blob);
  let certificate: UserCertificate;
  try {
    const type = reader.string().toString('latin1');
    if (type !== textType) throw new Error(`its data says ${shown(type.slice(0, 80))} where the file says ${textType}`);
    reader.string(); // nonce
    const keyFields: Buffer[] = [];
    for (let field = 0; field < kind.keyFields; field += 1) keyFields.push(reader.rawString());
    reader.uint64(); // serial
    const certType = reader.uint32();
    if (certType !== SSH_CERT_TYPE_USER) throw new Error(`it is a host certificate (ssh-keygen -h), not a user certificate`);
    const keyId = reader.string().toString('utf8');
    const principalList = new Reader(reader.string());
    const principals: string[] = [];
    while (!principalList.done()) principals.push(principalList.string().toString('utf8'));
    const validAfter = reader.uint64();
    const validBefore = reader.uint64();
    reader.string(); // critical options
    reader.string(); // extensions
    reader.string(); // reserved
    reader.string(); // signature key (the CA's)
    reader.string(); // signature
    if (!reader.done()) throw new Error('it has data after its signature');
    certificate = {
      path,
      type,
      blob,
      publicKey: Buffer.concat([sshString(kind.keyType), ...keyFields]),
      keyId,
      principals,
      validAfter,
      validBefore,
    };
  } catch (error) {
    throw new Error(`its data is not a valid certificate: ${error instanceof Error ? error.message : String(error)}`);
  }
  return certificate;
}

function timeOf(seconds: bigint): string {
  // Beyond what Date can show (year 275760): say so rather than throw.
  if (seconds > 8_640_000_000_000n) return 'the far future';
  return new Date(Number(seconds) * 1000).toISOString().replace('.000Z', 'Z');
}

/** "valid from … to …, principals …": what a message about the certificate says of it. */
export function describeCertificate(certificate: UserCertificate): string {
  const from = certificate.validAfter === 0n ? 'always' : timeOf(certificate.validAfter);
  const to = certificate.validBefore === FOREVER ? 'forever' : timeOf(certificate.validBefore);
  const principals = certificate.principals.length === 0 ? 'none (any user)' : certificate.principals.map(shown).join(', ');
  return `key id ${shown(certificate.keyId)}, valid from ${from} to ${to}, principals: ${principals}`;
}

/** Why the certificate cannot be used at `now` (OpenSSH: valid when valid_after <= now < valid_before), or null. */
export function validityProblem(certificate: UserCertificate, now: Date = new Date()): string | null {
  const seconds = BigInt(Math.floor(now.getTime() / 1000));
  if (seconds < certificate.validAfter) return `is not valid yet (it is ${timeOf(seconds)})`;
  if (seconds >= certificate.validBefore) return `has expired (it is ${timeOf(seconds)})`;
  return null;
}

/** Why OpenSSH will refuse the certificate for `username` when the host uses TrustedUserCAKeys, or null. */
export function principalProblem(certificate: UserCertificate, username: string): string | null {
  if (certificate.principals.length === 0) return `lists no principals, which sshd refuses under TrustedUserCAKeys`;
  if (!certificate.principals.includes(username))
    return `is not valid for the user ${shown(username)}: its principals are ${certificate.principals.map(shown).join(', ')}`;
  return null;
}

/**
 * Read, parse and check the certificate for a key: that it certifies this very key and is valid
 * now. Throws an Error whose message completes "The certificate <path> …" for the caller to place.
 */
export function readCertificate(path: string, publicKey: Buffer, now: Date = new Date()): UserCertificate {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > MAX_CERTIFICATE_FILE_BYTES) throw new Error(`it is ${size} bytes, far more than a certificate`);
    text = readFileSync(path, 'latin1');
  } catch (error) {
    throw new Error(`cannot be read: ${error instanceof Error ? error.message : String(error)}`);
  }
  const certificate = parseCertificate(text, path);
  if (!certificate.publicKey.equals(publicKey)) {
    throw new Error(
      `certifies another key than the private key it is given with (ssh-keygen -L -f ${path} shows its public key; sign the matching .pub with ssh-keygen -s)`,
    );
  }
  const problem = validityProblem(certificate, now);
  if (problem)
    throw new Error(`${problem}: ${describeCertificate(certificate)}. Have the CA sign a new one (ssh-keygen -s CA_KEY -I ID -n USER -V +52w KEY.pub)`);
  return certificate;
}

function installedSsh2Version(): string {
  const manifest: unknown = createRequire(import.meta.url)('ssh2/package.json');
  const version = typeof manifest === 'object' && manifest !== null && 'version' in manifest ? manifest.version : undefined;
  return typeof version === 'string' ? version : 'unknown';
}

/** The certificate file for a key: the one given, else `<key>-cert.pub` when it exists (as ssh does), else none. */
export function certificatePathFor(keyPath: string, explicit: string | undefined): string | undefined {
  if (explicit !== undefined) return explicit;
  const beside = `${keyPath}-cert.pub`;
  try {
    statSync(beside);
    return beside;
  } catch {
    return undefined;
  }
}

/**
 * At config load: the certificate for a host's key, checked now (and the ssh2 version the login
 * adapter is written for), so a wrong certificate stops the start with a message naming the host.
 */
export function checkCertificateAtLoad(path: string, privateKey: Buffer, passphrase: string | undefined, where: string): void {
  const version = installedSsh2Version();
  if (version !== SSH2_VERSION_FOR_CERTIFICATES) {
    throw new ConfigError(
      `${where}: certificate login is written for ssh2 ${SSH2_VERSION_FOR_CERTIFICATES}, and ssh2 ${version} is installed. Install the version in package.json (npm ci), or remove the certificate ${path} to log in with the plain key.`,
    );
  }
  try {
    readCertificate(path, publicKeyOf(privateKey, passphrase));
  } catch (error) {
    throw new ConfigError(`${where}: the certificate ${path} ${error instanceof Error ? error.message : String(error)}.`);
  }
}

/** The private key's public half in wire form; the key was already checked to parse. */
function publicKeyOf(privateKey: Buffer, passphrase: string | undefined): Buffer {
  const parsed = ssh2.utils.parseKey(privateKey, passphrase);
  if (parsed instanceof Error) throw parsed;
  return parsed.getPublicSSH();
}

/**
 * At connect: the certificate as it is on disk now (renewed ones are picked up), checked again.
 * A certificate that cannot be used fails the connection without trying it, naming the host.
 */
export function certificateForConnect(
  hostName: string,
  path: string,
  privateKey: Buffer,
  passphrase: string | undefined,
  now: Date = new Date(),
): Outcome<UserCertificate> {
  try {
    return success(readCertificate(path, publicKeyOf(privateKey, passphrase), now));
  } catch (error) {
    return failure(
      'auth_failed',
      `Cannot log in to host "${hostName}" with the certificate ${path}: it ${error instanceof Error ? error.message : String(error)}.`,
    );
  }
}

/** The authentication failure of a certificate login, with what sshd most likely refused. */
export function certificateLoginError(error: ToolError, certificate: UserCertificate, username: string): ToolError {
  const principal = principalProblem(certificate, username);
  const why = principal
    ? ` The certificate ${principal}, so unless the host maps them with AuthorizedPrincipalsFile, it refuses it.`
    : ' Check that the host trusts its CA (TrustedUserCAKeys or a cert-authority line in authorized_keys).';
  return {
    code: error.code,
    message: `${error.message} The certificate ${certificate.path} (${describeCertificate(certificate)}) was offered, then the plain key.${why}`,
  };
}

// ---------------------------------------------------------------------------
// The ssh2 1.17.0 internals used to send the publickey request (lib/protocol/Protocol.js authPK).

interface PacketWriter {
  allocStart: number;
  alloc(size: number): Buffer;
  finalize(packet: Buffer): Buffer;
}

interface ProtocolInternals {
  authPK: unknown;
  _kex: { sessionID: Buffer } | undefined;
  _packetRW: { write: PacketWriter };
  _authsQueue: string[];
}

interface Ssh2Utils {
  sendPacket(protocol: ProtocolInternals, packet: Buffer): void;
  convertSignature(signature: Buffer, keyType: string): Buffer | false;
}

interface SigningKey {
  type: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function ssh2Utils(): Ssh2Utils {
  const utils: unknown = createRequire(import.meta.url)('ssh2/lib/protocol/utils.js');
  if (!isRecord(utils) || typeof utils.sendPacket !== 'function' || typeof utils.convertSignature !== 'function') {
    throw new Error(`ssh2's lib/protocol/utils.js is not the ssh2 ${SSH2_VERSION_FOR_CERTIFICATES} one this login was written for`);
  }
  return utils as unknown as Ssh2Utils;
}

function protocolOf(client: Client): ProtocolInternals {
  const protocol: unknown = (client as unknown as Record<string, unknown>)._protocol;
  const writer = isRecord(protocol) && isRecord(protocol._packetRW) ? protocol._packetRW.write : undefined;
  if (
    !isRecord(protocol) ||
    typeof protocol.authPK !== 'function' ||
    !Array.isArray(protocol._authsQueue) ||
    !isRecord(writer) ||
    typeof writer.alloc !== 'function' ||
    typeof writer.finalize !== 'function' ||
    typeof writer.allocStart !== 'number'
  ) {
    throw new Error(`ssh2's protocol object is not the ssh2 ${SSH2_VERSION_FOR_CERTIFICATES} one this login was written for`);
  }
  return protocol as unknown as ProtocolInternals;
}

export interface CertificateLogin {
  /** For ssh2's connect options: the certificate first, then (as ssh does) the plain key, then give up. */
  authHandler: AuthHandlerMiddleware;
  /** Call right after client.connect(): makes that connection's publickey requests carry the certificate. */
  install(client: Client): void;
}

/**
 * Log in with `certificate` for the connection's configured private key. `install` throws when
 * ssh2's internals are not the expected ones.
 */
export function certificateLogin(certificate: UserCertificate): CertificateLogin {
  let attempts = 0;
  let plainKey = false;
  const authHandler: AuthHandlerMiddleware = (methodsLeft, _partialSuccess, next) => {
    attempts += 1;
    // ssh2 passes null before the first attempt; then the methods the server still allows.
    const allowed = !Array.isArray(methodsLeft) || methodsLeft.includes('publickey');
    if (allowed && attempts <= 2) {
      plainKey = attempts === 2;
      next('publickey');
      return;
    }
    // ssh2 takes false as "no more methods": it fails the login with a client-authentication error.
    (next as (method: AuthenticationType | false) => void)(false);
  };
  return { authHandler, install: (client) => replaceAuthPK(client, certificate, () => plainKey) };
}

function replaceAuthPK(client: Client, certificate: UserCertificate, plainKey: () => boolean): void {
  const protocol = protocolOf(client);
  const original = protocol.authPK as (...args: unknown[]) => void;
  const { sendPacket, convertSignature } = ssh2Utils();
  // Same arguments as ssh2's authPK: `key` is ssh2's parsed private key, `keyAlgo` the signature
  // algorithm it chose (undefined: the key's own type), `sign` present for the signed request.
  const authPK = (username: string, key: SigningKey, keyAlgo: unknown, sign?: unknown): void => {
    if (plainKey()) {
      original.call(protocol, username, key, keyAlgo, sign);
      return;
    }
    if (typeof keyAlgo === 'function') {
      sign = keyAlgo;
      keyAlgo = undefined;
    }
    const signatureAlgorithm = typeof keyAlgo === 'string' ? keyAlgo : key.type;
    const certificateAlgorithm = CERTIFICATE_ALGORITHMS[signatureAlgorithm];
    if (!certificateAlgorithm) throw new Error(`no certificate algorithm for ${signatureAlgorithm}`);
    const request = Buffer.concat([
      Buffer.from([USERAUTH_REQUEST]),
      sshString(username),
      sshString('ssh-connection'),
      sshString('publickey'),
      Buffer.from([typeof sign === 'function' ? 1 : 0]),
      sshString(certificateAlgorithm),
      sshString(certificate.blob),
    ]);
    const send = (payload: Buffer): void => {
      const writer = protocol._packetRW.write;
      const packet = writer.alloc(payload.length);
      payload.copy(packet, writer.allocStart);
      // The server answers each request with one USERAUTH message; ssh2 matches them to this queue.
      protocol._authsQueue.push('publickey');
      sendPacket(protocol, writer.finalize(packet));
    };
    if (typeof sign !== 'function') {
      send(request);
      return;
    }
    const sessionId = protocol._kex?.sessionID;
    if (!sessionId) throw new Error('no SSH session id yet');
    // RFC 4252 §7: the signature covers the session id and the request as sent.
    const signed = Buffer.concat([sshString(sessionId), request]);
    (sign as (data: Buffer, done: (signature: Buffer) => void) => void)(signed, (raw) => {
      const signature = convertSignature(raw, key.type);
      if (signature === false) throw new Error('Error while converting handshake signature');
      send(Buffer.concat([request, sshString(Buffer.concat([sshString(signatureAlgorithm), sshString(signature)]))]));
    });
  };
  // Only this connection's protocol object: other connections keep ssh2's own method.
  (protocol as { authPK: unknown }).authPK = authPK;
}
