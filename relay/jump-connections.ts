/**
 * SSH connections to jump hosts, shared by every host behind them. A host behind `bastion` gets
 * its TCP stream as a `direct-tcpip` channel of bastion's one connection (ssh2's forwardOut), and
 * its own SSH session runs inside that stream: bastion sees only encrypted bytes, and each hop's
 * host key is checked exactly as for a host reached directly (the same connect options).
 *
 * Every step is bounded: a hop's handshake by its connect timeout (ssh2's readyTimeout), a
 * forwarding request by the same time. When a hop's connection dies, the channels through it close,
 * so the connections behind it close too and their pools reconnect on next use, through a new one.
 */
import { Client } from 'ssh2';
import type { ClientChannel, ConnectConfig } from 'ssh2';
import { failure, success, type Outcome, type ToolError } from '../shared/errors.ts';
import type { HostConfig } from './config.ts';
import type { HostKeyDecision } from './host-keys.ts';
import { log } from './log.ts';
import { connectError, hostKeyError } from './ssh-errors.ts';

/** What a pool needs to open one connection to `host`: ssh2 options, and the host key refusal if there was one. */
export interface ConnectAttempt {
  config: ConnectConfig;
  refusal(): Extract<HostKeyDecision, { ok: false }> | undefined;
  /** Where accept-new records keys: named in the message for an unknown key. */
  recordFile: string;
  /** Connect `client` (through `sock`, the forwarded channel, behind a jump), with a certificate login when the host has one; throws as ssh2's connect does. */
  start(client: Client, sock?: ClientChannel): void;
  /** A failed login's error, with the certificate's validity and principals when one was offered. */
  explain(error: ToolError): ToolError;
}

export type ConnectAttemptFor = (host: HostConfig) => Outcome<ConnectAttempt>;

/** RFC 4254 §5.1 reason codes for a refused channel open. */
const OPEN_ADMINISTRATIVELY_PROHIBITED = 1;
const OPEN_CONNECT_FAILED = 2;

interface Hop {
  key: string;
  host: HostConfig;
  client: Client;
  ready: Promise<Outcome<Client>>;
  closed: boolean;
  tunnels: number;
  idleTimer?: ReturnType<typeof setTimeout>;
}

/** A failure at one hop, before it is told in the terms of the host the caller wanted. */
interface HopFailure {
  hop: string;
  error: ToolError;
}

type HopOutcome<T> = { ok: true; value: T } | { ok: false; error: HopFailure };

function reasonOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null && 'reason' in error ? error.reason : undefined;
}

export class JumpConnections {
  private readonly hops = new Map<string, Hop>();
  private closed = false;
  private readonly attemptFor: ConnectAttemptFor;
  /** A hop with no channel through it for this long is closed; the next host behind it reopens it. */
  private readonly idleMs: number;

  constructor(attemptFor: ConnectAttemptFor, idleMs: number) {
    this.attemptFor = attemptFor;
    this.idleMs = idleMs;
  }

  /**
   * A stream to `target`'s address and port, opened by the last hop of `chain` (first hop first),
   * for `target`'s own SSH session. Errors name the hop that failed.
   */
  async tunnel(chain: readonly HostConfig[], target: HostConfig): Promise<Outcome<ClientChannel>> {
    const opened = await this.forward(chain, chain.length - 1, target.address, target.port);
    if (opened.ok) return opened;
    const { hop, error } = opened.error;
    return failure(error.code, `Could not reach host "${target.name}" through jump host "${hop}": ${error.message}`);
  }

  close(): void {
    this.closed = true;
    for (const hop of this.hops.values()) this.drop(hop);
  }

  /** Open a direct-tcpip channel on hop `index` of `chain` to `address:port`. */
  private async forward(chain: readonly HostConfig[], index: number, address: string, port: number): Promise<HopOutcome<ClientChannel>> {
    const host = chain[index];
    if (!host) return { ok: false, error: { hop: '?', error: { code: 'ssh_error', message: 'empty jump chain' } } };
    const hop = this.hop(chain, index);
    const ready = await hop.ready;
    if (!ready.ok) return { ok: false, error: { hop: host.name, error: ready.error } };
    const opened = await this.openChannel(hop, address, port);
    if (!opened.ok) return { ok: false, error: { hop: host.name, error: opened.error } };
    const channel = opened.value;
    hop.tunnels += 1;
    if (hop.idleTimer) clearTimeout(hop.idleTimer);
    hop.idleTimer = undefined;
    channel.once('close', () => {
      hop.tunnels -= 1;
      if (hop.tunnels === 0 && !hop.closed) this.startIdleTimer(hop);
    });
    return success(channel);
  }

  private openChannel(hop: Hop, address: string, port: number): Promise<Outcome<ClientChannel>> {
    const name = hop.host.name;
    const seconds = hop.host.connectTimeoutMs / 1000;
    return new Promise((resolve) => {
      let settled = false;
      const settle = (outcome: Outcome<ClientChannel>): void => {
        if (settled) {
          if (outcome.ok) outcome.value.destroy();
          return;
        }
        settled = true;
        clearTimeout(silence);
        resolve(outcome);
      };
      // No answer in this time: this request fails. The hop itself is dropped only when nothing else
      // runs through it: sshd answers a forwarding request only once its own connect to the target
      // ends, which for a powered-off target can take minutes, and that must not cut off the other
      // hosts' sessions through the same hop. A hop that really died is found by its keepalives.
      const silence = setTimeout(() => {
        const idle = hop.tunnels === 0;
        settle(
          failure(
            'host_unreachable',
            `jump host "${name}" did not answer a forwarding request to ${address}:${port} within ${seconds} s` +
              (idle ? '; its connection was dropped.' : ' (the target may be down; the jump connection stays open for the other hosts).'),
          ),
        );
        if (idle) this.drop(hop);
      }, hop.host.connectTimeoutMs);
      try {
        hop.client.forwardOut('127.0.0.1', 0, address, port, (error, channel) => {
          if (!error) {
            settle(success(channel));
            return;
          }
          const reason = reasonOf(error);
          if (reason === OPEN_ADMINISTRATIVELY_PROHIBITED) {
            settle(
              failure(
                'ssh_error',
                `jump host "${name}" refused to forward to ${address}:${port} (${error.message}); its sshd must allow it (AllowTcpForwarding, PermitOpen).`,
              ),
            );
          } else if (reason === OPEN_CONNECT_FAILED) {
            settle(failure('host_unreachable', `jump host "${name}" could not connect to ${address}:${port} (${error.message}).`));
          } else {
            settle(failure('host_unreachable', `the connection to jump host "${name}" failed while forwarding to ${address}:${port}: ${error.message}`));
          }
        });
      } catch (error) {
        // ssh2 throws synchronously when the connection is no longer writable.
        settle(failure('host_unreachable', `the connection to jump host "${name}" is gone: ${error instanceof Error ? error.message : String(error)}`));
      }
    });
  }

  /** The shared connection for hop `index` of `chain`, opening it (through the hops before it) when there is none. */
  private hop(chain: readonly HostConfig[], index: number): Hop {
    const key = chain
      .slice(0, index + 1)
      .map((host) => host.name)
      .join('\n');
    const existing = this.hops.get(key);
    if (existing && !existing.closed) return existing;
    const host = chain[index] as HostConfig;
    const client = new Client();
    const hop: Hop = { key, host, client, ready: Promise.resolve(failure('ssh_error', 'not started')), closed: false, tunnels: 0 };
    this.hops.set(key, hop);
    hop.ready = this.connect(hop, chain, index);
    return hop;
  }

  private async connect(hop: Hop, chain: readonly HostConfig[], index: number): Promise<Outcome<Client>> {
    const { host, client } = hop;
    if (this.closed) return failure('relay_shutting_down', 'The relay is shutting down.');
    const attempt = this.attemptFor(host);
    if (!attempt.ok) {
      this.drop(hop);
      return attempt;
    }
    let sock: ClientChannel | undefined;
    if (index > 0) {
      const through = await this.forward(chain, index - 1, host.address, host.port);
      if (!through.ok) {
        this.drop(hop);
        // The hop before this one failed: say so in its own name.
        return failure(
          through.error.error.code,
          `jump host "${host.name}" is reached through "${through.error.hop}", which failed: ${through.error.error.message}`,
        );
      }
      sock = through.value;
    }
    if (hop.closed) {
      sock?.destroy();
      return failure('relay_shutting_down', 'The relay is shutting down.');
    }
    return new Promise((resolve) => {
      let connecting = true;
      const finish = (outcome: Outcome<Client>): void => {
        if (!connecting) return;
        connecting = false;
        if (!outcome.ok) this.drop(hop);
        resolve(outcome);
      };
      client.on('connect', () => {
        // As for direct hosts: without TCP_NODELAY every small exchange waits out Nagle's delay.
        client.setNoDelay(true);
      });
      client.on('ready', () => {
        log('debug', 'jump host connection ready', { host: host.name });
        this.startIdleTimer(hop);
        finish(success(client));
      });
      client.on('error', (error: Error) => {
        const refused = attempt.value.refusal();
        if (connecting)
          finish({ ok: false, error: refused ? hostKeyError(host, refused, attempt.value.recordFile) : attempt.value.explain(connectError(error, host)) });
        else log('warn', 'jump host connection error', { host: host.name, error: error.message });
      });
      client.on('close', () => {
        finish(failure('host_unreachable', `jump host "${host.name}" closed the connection during the SSH handshake.`));
        log('debug', 'jump host connection closed', { host: host.name });
        this.drop(hop);
      });
      try {
        attempt.value.start(client, sock);
      } catch (error) {
        finish(
          failure(
            'auth_failed',
            `Cannot use the credentials configured for jump host "${host.name}": ${error instanceof Error ? error.message : String(error)}`,
          ),
        );
      }
    });
  }

  private startIdleTimer(hop: Hop): void {
    if (hop.idleTimer) clearTimeout(hop.idleTimer);
    if (hop.tunnels > 0) return;
    hop.idleTimer = setTimeout(() => {
      if (hop.tunnels === 0) this.drop(hop);
    }, this.idleMs);
    hop.idleTimer.unref();
  }

  /** Forget a hop and end its connection; channels through it close, and the hosts behind reconnect on next use. */
  private drop(hop: Hop): void {
    if (hop.idleTimer) clearTimeout(hop.idleTimer);
    if (this.hops.get(hop.key) === hop) this.hops.delete(hop.key);
    if (hop.closed) return;
    hop.closed = true;
    hop.client.destroy();
  }
}
