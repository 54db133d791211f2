/**
 * The relay-side operations, independent of how requests arrive: the relay daemon feeds them
 * protocol requests from the hub, the stdio mode calls them in-process.
 */
import { failure, success, type Outcome } from '../shared/errors.ts';
import type { HostInventoryEntry, HostStatus, Operation, OperationResult, ProbeOperation } from '../shared/protocol.ts';
import { VERSION } from '../shared/version.ts';
import type { RelayHostsConfig } from './config.ts';
import { runExec, type OutputSink } from './exec.ts';
import { listDirectory, streamFile, writeFileAtomic } from './file-ops.ts';
import { describeTarget } from './ssh-errors.ts';
import { SshPools, type HostPool } from './ssh-pool.ts';

/** How file operations move bytes to and from whoever asked (the hub, over the WebSocket). */
export interface ByteStreams {
  send(data: Uint8Array): Promise<boolean>;
  receive(expected: number): AsyncIterable<Uint8Array>;
}

export class RelayOperations {
  readonly config: RelayHostsConfig;
  private readonly pools: SshPools;

  constructor(config: RelayHostsConfig) {
    this.config = config;
    this.pools = new SshPools(config.hosts, { files: config.knownHostsFiles, recordFile: config.recordKnownHostsFile });
  }

  inventory(): HostInventoryEntry[] {
    return this.config.hosts.map((host) => ({
      name: host.name,
      target: describeTarget(host),
      labels: host.labels,
      capabilities: ['exec'],
    }));
  }

  pool(name: string): HostPool | undefined {
    return this.pools.get(name);
  }

  async run(operation: Operation, onOutput: OutputSink, signal: AbortSignal, streams?: ByteStreams): Promise<Outcome<OperationResult>> {
    switch (operation.op) {
      case 'read_file': {
        const pool = this.pools.get(operation.host);
        if (!pool) return this.unknownHost(operation.host);
        if (!streams) return failure('protocol_error', 'read_file needs a byte stream to the hub.');
        // Chunk by chunk, each sent within the hub's credit before the next is read.
        const read = await streamFile(pool, operation, (chunk) => streams.send(chunk), signal);
        if (!read.ok) return read;
        return success({ op: 'read_file', info: read.value.info, offset: read.value.offset, bytes: read.value.bytes, eof: read.value.eof });
      }
      case 'write_file': {
        const pool = this.pools.get(operation.host);
        if (!pool) return this.unknownHost(operation.host);
        if (!streams) return failure('protocol_error', 'write_file needs a byte stream from the hub.');
        if (operation.size > operation.maxBytes) {
          return failure('file_too_large', `The content is ${operation.size.toLocaleString('en-US')} bytes, more than MAX_FILE_SIZE (${operation.maxBytes.toLocaleString('en-US')}); ${operation.path} was not changed.`);
        }
        const written = await writeFileAtomic(
          pool,
          {
            path: operation.path,
            source: streams.receive(operation.size),
            maxBytes: operation.maxBytes,
            ...(operation.permissions !== undefined ? { permissions: operation.permissions } : {}),
            overwrite: operation.overwrite,
            createDirs: operation.createDirs,
          },
          signal,
        );
        return written.ok ? success({ op: 'write_file', ...written.value }) : written;
      }
      case 'list_directory': {
        const pool = this.pools.get(operation.host);
        if (!pool) return this.unknownHost(operation.host);
        const listed = await listDirectory(pool, operation.path, signal);
        return listed.ok ? success({ op: 'list_directory', ...listed.value }) : listed;
      }
      case 'exec': {
        const pool = this.pools.get(operation.host);
        if (!pool) return this.unknownHost(operation.host);
        return runExec(pool, operation, onOutput, signal);
      }
      case 'probe':
        return success({ op: 'probe', hosts: await this.probe(operation, signal) });
      case 'ping':
        return success({ op: 'ping', relayVersion: VERSION });
      default: {
        const unhandled: never = operation;
        return failure('protocol_error', `unknown operation ${JSON.stringify(unhandled)}`);
      }
    }
  }

  close(): void {
    this.pools.closeAll();
  }

  private unknownHost(name: string): Outcome<never> {
    return failure('host_not_configured', `Host "${name}" is not configured on relay "${this.config.relayId}". Configured: ${this.pools.names().join(', ') || 'none'}.`);
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
            message: timedOut ? `No SSH connection within ${operation.timeoutMs / 1000} s.` : lease.error.message,
          };
        }
        lease.value.release();
        return { name, reachable: true, latencyMs: performance.now() - started };
      }),
    );
  }
}
