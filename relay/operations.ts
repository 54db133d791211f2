/**
 * The relay-side operations, independent of how requests arrive: the relay daemon feeds them
 * protocol requests from the hub, the stdio mode calls them in-process.
 */
import { boundText } from '../shared/bounded-text.ts';
import { failure, success, type Outcome, type ToolError } from '../shared/errors.ts';
import type { HostInventoryEntry, HostStatus, Operation, OperationResult, ProbeOperation } from '../shared/protocol.ts';
import { EXEC_CAPABILITY, JOBS_CAPABILITY, PROXMOX_CAPABILITY, READ_ONLY_CAPABILITY } from '../shared/capabilities.ts';
import { VERSION } from '../shared/version.ts';
import type { RelayHostsConfig } from './config.ts';
import { runExec, type OutputSink } from './exec.ts';
import type { JobTimings } from './host-jobs.ts';
import { HostJobs } from './job-ops.ts';
import { runGuestExec, runPve } from './proxmox-ops.ts';
import { streamFromContainer, writeIntoContainer } from './container-files.ts';
import { deleteLeftover, listDirectory, streamFile, writeFileAtomic, type WriteRequest } from './file-ops.ts';
import { log } from './log.ts';
import { UnfinishedWrites } from './unfinished-writes.ts';
import { describeTarget } from './ssh-errors.ts';
import { SshPools, type HostPool } from './ssh-pool.ts';
import { formatCount } from '../shared/format-count.ts';

const SWEEP_RETRY_MS = 2_000;
const SWEEP_MAX_DELAY_MS = 5 * 60_000;
const SWEEP_TIMEOUT_MS = 10_000;

/** How file operations move bytes to and from whoever asked (the hub, over the WebSocket). */
export interface ByteStreams {
  send(data: Uint8Array): Promise<boolean>;
  receive(expected: number): AsyncIterable<Uint8Array>;
}

export class RelayOperations {
  readonly config: RelayHostsConfig;
  private readonly pools: SshPools;
  private readonly jobs: HostJobs;

  private readonly unfinished: UnfinishedWrites;
  private sweepTimer: ReturnType<typeof setTimeout> | undefined;
  private sweepDelay = SWEEP_RETRY_MS;

  /** `jobTimings`: the job watchdog's step and the stop's grace (tests shorten them). */
  constructor(config: RelayHostsConfig, jobTimings?: JobTimings) {
    this.config = config;
    this.jobs = new HostJobs(jobTimings);
    this.pools = new SshPools(config.hosts, { files: config.knownHostsFiles, recordFile: config.recordKnownHostsFile });
    this.unfinished = new UnfinishedWrites(config.stateDir);
    // Temporary files left by a relay that was killed mid-write.
    if (this.unfinished.leftovers().length > 0) this.scheduleSweep(0);
  }

  /** The journal a write on `host` records its temporary file in. */
  journal(host: string): NonNullable<WriteRequest['journal']> {
    return {
      add: (path) => this.unfinished.add(host, path),
      remove: (path) => this.unfinished.remove(host, path),
      deleteLater: (path) => {
        this.unfinished.abandon(host, path);
        this.scheduleSweep(SWEEP_RETRY_MS);
      },
    };
  }

  /** Delete every recorded leftover that can be reached now; retry later for the rest. */
  async sweepUnfinishedWrites(): Promise<void> {
    for (const entry of this.unfinished.leftovers()) {
      const pool = this.pools.get(entry.host);
      if (!pool) {
        this.unfinished.remove(entry.host, entry.path);
        continue;
      }
      if (await deleteLeftover(pool.forCaller(undefined), entry.path, AbortSignal.timeout(SWEEP_TIMEOUT_MS))) {
        this.unfinished.remove(entry.host, entry.path);
        log('info', 'deleted the temporary file of an unfinished write', { host: entry.host });
      }
    }
    if (this.unfinished.leftovers().length === 0) {
      this.sweepDelay = SWEEP_RETRY_MS;
      return;
    }
    // A host that stays unreachable is retried less and less often.
    this.sweepDelay = Math.min(this.sweepDelay * 2, SWEEP_MAX_DELAY_MS);
    this.scheduleSweep(this.sweepDelay);
  }

  private scheduleSweep(delayMs: number): void {
    if (this.sweepTimer) return;
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = undefined;
      void this.sweepUnfinishedWrites();
    }, delayMs);
    this.sweepTimer.unref();
  }

  inventory(): HostInventoryEntry[] {
    return this.config.hosts.map((host) => ({
      name: host.name,
      target: describeTarget(host),
      labels: host.labels,
      // Jobs run commands: a read-only host has none to start (and so none to read).
      capabilities: [
        host.readOnly ? READ_ONLY_CAPABILITY : EXEC_CAPABILITY,
        ...(host.proxmox ? [PROXMOX_CAPABILITY] : []),
        ...(host.readOnly ? [] : [JOBS_CAPABILITY]),
      ],
    }));
  }

  /**
   * Defense in depth: the relay's own config may make a host read-only, narrowing what any caller
   * may do there. The refusal for a command or a write on such a host, else null.
   */
  readOnlyRefusal(name: string, what: 'run commands' | 'write files'): { ok: false; error: ToolError } | null {
    if (!this.config.hosts.some((host) => host.name === name && host.readOnly)) return null;
    return failure('host_read_only', `The relay's configuration makes ${name} read-only: it does not ${what} there, whatever the server's policy allows.`);
  }

  /** At start: tell the operator about host keys the relay would refuse (see HostPool.checkHostKey). */
  checkHostKeys(): Promise<void> {
    return this.pools.checkHostKeys();
  }

  pool(name: string): HostPool | undefined {
    return this.pools.get(name);
  }

  /** Proxmox work needs a host marked as Proxmox VE: the refusal when it is not, else null. */
  notProxmoxRefusal(name: string): { ok: false; error: ToolError } | null {
    if (this.config.hosts.some((host) => host.name === name && host.proxmox)) return null;
    return failure(
      'invalid_argument',
      `Host "${name}" is not marked as a Proxmox VE host ("proxmox": true in the relay config, or ENABLE_PROXMOX=true), so containers and VMs cannot be reached there.`,
    );
  }

  /**
   * Run one operation. `caller` (the hub's user id) makes the host's channels count against that
   * user's share; the stdio mode, with one user, passes none.
   */
  async run(operation: Operation, onOutput: OutputSink, signal: AbortSignal, streams?: ByteStreams, caller?: string): Promise<Outcome<OperationResult>> {
    switch (operation.op) {
      case 'read_file': {
        const pool = this.pools.get(operation.host)?.forCaller(caller);
        if (!pool) return this.unknownHost(operation.host);
        if (!streams) return failure('protocol_error', 'read_file needs a byte stream to the hub.');
        const refusal = operation.ctid !== undefined ? this.notProxmoxRefusal(operation.host) : null;
        if (refusal) return refusal;
        // Chunk by chunk, each sent within the hub's credit before the next is read.
        const send = (chunk: Buffer): Promise<boolean> => streams.send(chunk);
        const read =
          operation.ctid !== undefined
            ? await streamFromContainer(pool, operation.ctid, operation, send, signal)
            : await streamFile(pool, operation, send, signal);
        if (!read.ok) return read;
        return success({ op: 'read_file', info: read.value.info, offset: read.value.offset, bytes: read.value.bytes, eof: read.value.eof });
      }
      case 'write_file': {
        const pool = this.pools.get(operation.host)?.forCaller(caller);
        if (!pool) return this.unknownHost(operation.host);
        if (!streams) return failure('protocol_error', 'write_file needs a byte stream from the hub.');
        const refusal = this.readOnlyRefusal(operation.host, 'write files') ?? (operation.ctid !== undefined ? this.notProxmoxRefusal(operation.host) : null);
        if (refusal) return refusal;
        if (operation.size > operation.maxBytes) {
          return failure(
            'file_too_large',
            `The content is ${formatCount(operation.size)} bytes, more than MAX_FILE_SIZE (${formatCount(operation.maxBytes)}); ${operation.path} was not changed.`,
          );
        }
        const request = {
          path: operation.path,
          source: streams.receive(operation.size),
          journal: this.journal(operation.host),
          maxBytes: operation.maxBytes,
          ...(operation.permissions !== undefined ? { permissions: operation.permissions } : {}),
          overwrite: operation.overwrite,
          createDirs: operation.createDirs,
        };
        const written =
          operation.ctid !== undefined ? await writeIntoContainer(pool, operation.ctid, request, signal) : await writeFileAtomic(pool, request, signal);
        return written.ok ? success({ op: 'write_file', ...written.value }) : written;
      }
      case 'list_directory': {
        const pool = this.pools.get(operation.host)?.forCaller(caller);
        if (!pool) return this.unknownHost(operation.host);
        const listed = await listDirectory(pool, operation.path, signal);
        return listed.ok ? success({ op: 'list_directory', ...listed.value }) : listed;
      }
      case 'exec': {
        const pool = this.pools.get(operation.host)?.forCaller(caller);
        if (!pool) return this.unknownHost(operation.host);
        const refusal = this.readOnlyRefusal(operation.host, 'run commands') ?? (operation.guest ? this.notProxmoxRefusal(operation.host) : null);
        if (refusal) return refusal;
        const guest = operation.guest;
        // pct exec and the guest agent give no terminal of their own: a pty is for host commands.
        if (guest && operation.pty) return failure('invalid_argument', 'A pseudo-terminal (pty) is available for commands on the host, not inside a guest.');
        if (operation.sudo && guest)
          return failure(
            'invalid_argument',
            'sudo runs commands on the host itself, not in a container or VM (those commands run as root there already): leave sudo out.',
          );
        // sudo's own words come on stderr, which a pty merges into stdout, and the password line would be typed into the terminal.
        if (operation.sudo && operation.pty)
          return failure('invalid_argument', 'sudo and pty cannot be combined: run the command with sudo: true or with pty: true, not both.');
        if (guest?.kind === 'qemu') return runGuestExec(pool, { ...operation, guest: { kind: 'qemu', id: guest.id } }, onOutput, signal);
        return runExec(pool, operation, onOutput, signal);
      }
      case 'pve': {
        const pool = this.pools.get(operation.host)?.forCaller(caller);
        if (!pool) return this.unknownHost(operation.host);
        const changes = operation.action !== 'list' && operation.action !== 'status';
        const refusal = this.notProxmoxRefusal(operation.host) ?? (changes ? this.readOnlyRefusal(operation.host, 'run commands') : null);
        if (refusal) return refusal;
        return runPve(pool, operation, signal);
      }
      case 'probe':
        return success({ op: 'probe', hosts: await this.probe(operation, signal) });
      case 'ping':
        return success({ op: 'ping', relayVersion: VERSION });
      case 'job_start': {
        const pool = this.pools.get(operation.host)?.forCaller(caller);
        if (!pool) return this.unknownHost(operation.host);
        const refusal = this.readOnlyRefusal(operation.host, 'run commands') ?? this.guestJobRefusal(operation);
        if (refusal) return refusal;
        return this.jobs.start(pool, operation, signal, caller);
      }
      case 'job_status':
      case 'job_output':
      case 'job_cancel':
      case 'job_cleanup': {
        const pool = this.pools.get(operation.host)?.forCaller(caller);
        if (!pool) return this.unknownHost(operation.host);
        const refusal = this.guestJobRefusal(operation);
        if (refusal) return refusal;
        if (operation.op === 'job_status') return this.jobs.status(pool, operation, signal);
        if (operation.op === 'job_output') return this.jobs.output(pool, operation, signal);
        if (operation.op === 'job_cancel') return this.jobs.cancel(pool, operation, signal);
        return this.jobs.cleanup(pool, operation, signal);
      }
      default: {
        const unhandled: never = operation;
        return failure('protocol_error', `unknown operation ${JSON.stringify(unhandled)}`);
      }
    }
  }

  close(): void {
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.pools.closeAll();
  }

  /**
   * Jobs in guests need a Proxmox host: containers through `pct exec`, VMs through the guest agent
   * (each job script one short `qm guest exec`, relay/vm-jobs.ts); the job runs detached inside.
   */
  private guestJobRefusal(operation: { host: string; guest?: { kind: 'lxc' | 'qemu'; id: string } | undefined }): { ok: false; error: ToolError } | null {
    return operation.guest ? this.notProxmoxRefusal(operation.host) : null;
  }

  private unknownHost(name: string): Outcome<never> {
    return failure(
      'host_not_configured',
      `Host "${name}" is not configured on relay "${this.config.relayId}". Configured: ${this.pools.names().join(', ') || 'none'}.`,
    );
  }

  /** Reachable means an SSH connection is open or could be opened and authenticated now. */
  private async probe(operation: ProbeOperation, signal: AbortSignal): Promise<HostStatus[]> {
    const names = operation.hosts.length > 0 ? operation.hosts : this.pools.names();
    const limit = AbortSignal.any([signal, AbortSignal.timeout(operation.timeoutMs)]);
    return Promise.all(
      names.map(async (name): Promise<HostStatus> => {
        const pool = this.pools.get(name);
        if (!pool) return { name, reachable: false, code: 'host_not_configured', message: `Host "${name}" is not configured.` };
        const started = performance.now();
        const lease = await pool.acquire(limit);
        if (!lease.ok) {
          const timedOut = lease.error.code === 'cancelled' && !signal.aborted;
          return {
            name,
            reachable: false,
            code: timedOut ? 'host_unreachable' : lease.error.code,
            // It travels inside the probe's result frame, whose schema bounds it.
            message: boundText(timedOut ? `No SSH connection within ${operation.timeoutMs / 1000} s.` : lease.error.message),
          };
        }
        lease.value.release();
        return { name, reachable: true, latencyMs: performance.now() - started };
      }),
    );
  }
}
