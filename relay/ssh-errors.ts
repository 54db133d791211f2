/**
 * The one place where ssh2 and socket failures become error codes. Classification uses ssh2's
 * machine-readable fields (`level`, `code`, `reason`), never message text.
 */
import { existsSync } from 'node:fs';
import type { ToolError } from '../shared/errors.ts';
import type { HostConfig } from './config.ts';
import { quoteShellWord } from '../shared/shell-quote.ts';
import { knownHostsName, trustCommand, type HostKeyDecision } from './host-keys.ts';

const UNREACHABLE_SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
]);

function field(error: unknown, name: string): unknown {
  return typeof error === 'object' && error !== null && name in error ? (error as Record<string, unknown>)[name] : undefined;
}

export function describeTarget(host: HostConfig): string {
  return `${host.username}@${host.address}:${host.port}`;
}

/** What to run on the host itself to see its key fingerprints, to check one out of band. */
export const HOST_FINGERPRINTS_COMMAND = 'for k in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf "$k"; done';

/** The command that trusts the refused key, appending to the relay's own known_hosts; undefined when the key cannot be written as a line. */
export function trustRefusedKey(decision: Extract<HostKeyDecision, { ok: false }>, recordFile: string): string | undefined {
  return decision.line === undefined ? undefined : trustCommand(decision.line, recordFile);
}

/** A refused host key, with its fingerprint and the exact way to trust it. */
export function hostKeyError(host: HostConfig, decision: Extract<HostKeyDecision, { ok: false }>, recordFile: string): ToolError {
  const where = `host "${host.name}" (${host.address}:${host.port})`;
  const command = trustRefusedKey(decision, recordFile);
  const trust = command === undefined ? '' : `trust it on the machine running mcp-remote-exec with: ${command} `;
  const pin = `${command === undefined ? '' : 'or '}pin it: set host_key_fingerprints ["${decision.fingerprint}"] for this host in the relay config (SSH_HOST_KEY_FINGERPRINT=${decision.fingerprint} with the .env setup)`;
  switch (decision.reason) {
    case 'unknown':
      return {
        code: 'host_key_unknown',
        message: `The ${decision.keyType} host key of ${where} is not trusted yet (not in known_hosts). Its fingerprint is ${decision.fingerprint}. If that matches the host (compare with the output of: ${HOST_FINGERPRINTS_COMMAND}, run on the host), ${trust}${pin}. No restart is needed. On a network you trust, SSH_STRICT_HOST_KEY_CHECKING=false (strict_host_key_checking: false) accepts and records a new key instead.`,
      };
    case 'changed':
      return {
        code: 'host_key_changed',
        message: `The host key of ${where} has CHANGED. It now presents ${decision.keyType} ${decision.fingerprint}; the trusted key${decision.knownFingerprints.length > 1 ? 's are' : ' is'} ${decision.knownFingerprints.join(', ')}. The connection was refused. If the host was really reinstalled, remove the old entry (ssh-keygen -R ${quoteShellWord(knownHostsName(host.address, host.port))} -f <known_hosts file>)${command === undefined ? '' : ` and trust the new key with: ${command}`}`,
      };
    case 'revoked':
      return {
        code: 'host_key_changed',
        message: `The host key ${decision.fingerprint} presented by ${where} is marked @revoked in known_hosts. The connection was refused.`,
      };
  }
}

/** Classify a failure to connect or authenticate. */
export function connectError(error: unknown, host: HostConfig): ToolError {
  const level = field(error, 'level');
  const code = field(error, 'code');
  const target = describeTarget(host);
  if (level === 'agent' && host.auth.kind === 'agent') {
    // ssh2 could not talk to the agent; its message ("Failed to connect to agent") does not say why, the socket does.
    const reason = existsSync(host.auth.socketPath)
      ? 'nothing answers on its socket (the agent may have died)'
      : 'its socket no longer exists (the agent has stopped)';
    return {
      code: 'auth_failed',
      message: `Cannot use the ssh-agent at ${host.auth.socketPath} to log in as "${host.username}" on host "${host.name}" (${target}): ${reason}. Is the agent running (ssh-add -l)?`,
    };
  }
  if (level === 'client-authentication') {
    const method =
      host.auth.kind === 'key'
        ? `the key ${host.auth.keyPath}`
        : host.auth.kind === 'agent'
          ? `the keys of the ssh-agent at ${host.auth.socketPath} (ssh-add -l lists them)`
          : 'the configured password';
    return { code: 'auth_failed', message: `Authentication as "${host.username}" on host "${host.name}" (${target}) failed with ${method}.` };
  }
  if (level === 'client-timeout') {
    return {
      code: 'host_unreachable',
      message: `Host "${host.name}" (${target}) did not complete the SSH handshake within ${host.connectTimeoutMs / 1000} s.`,
    };
  }
  if (level === 'client-dns' || (typeof code === 'string' && UNREACHABLE_SOCKET_CODES.has(code))) {
    return {
      code: 'host_unreachable',
      message: `Cannot reach host "${host.name}" at ${host.address}:${host.port}${typeof code === 'string' ? ` (${code})` : ''}.`,
    };
  }
  if (level === 'client-socket') {
    return { code: 'host_unreachable', message: `The connection to host "${host.name}" (${target}) failed at the socket level.` };
  }
  return { code: 'ssh_error', message: `SSH connection to host "${host.name}" (${target}) failed: ${error instanceof Error ? error.message : String(error)}` };
}

/** ssh2 reports a refused channel open with a numeric `reason` (RFC 4254 §5.1). */
export function isChannelOpenFailure(error: unknown): boolean {
  return typeof field(error, 'reason') === 'number';
}

/** SFTP status codes (draft-ietf-secsh-filexfer-02 §7), as ssh2 reports them in `err.code`. */
const SFTP_NO_SUCH_FILE = 2;
const SFTP_PERMISSION_DENIED = 3;

/** Classify an SFTP failure on `path` while doing `action` (e.g. "open", "rename"). */
export function sftpError(error: unknown, path: string, action: string): ToolError {
  const code = field(error, 'code');
  if (code === SFTP_NO_SUCH_FILE) return { code: 'path_not_found', message: `${path} does not exist (${action}).` };
  if (code === SFTP_PERMISSION_DENIED) return { code: 'permission_denied', message: `Permission denied for ${path} (${action}).` };
  const detail = error instanceof Error ? error.message : String(error);
  return { code: 'ssh_error', message: `SFTP ${action} of ${path} failed: ${detail}` };
}
