/**
 * The stdio mode's executor: the same relay operations, called in-process instead of through the
 * Worker and the hub. Results take the same shape as the hub executor's, so the shared tool
 * definitions format them identically. There is no relay, so it has no ping (and no relay_ping tool).
 */
import { failure, success, type Outcome } from '../shared/errors.ts';
import { execOutcomeFrom, type ExecOutcome } from '../shared/exec-output.ts';
import { selectHost } from '../shared/host-selection.ts';
import { hostViews } from '../shared/host-views.ts';
import { PROBE_TIMEOUT_MS } from '../shared/limits.ts';
import type { HostStatus } from '../shared/protocol.ts';
import type { DirectoryListing, FileReadResult, FileWriteResult, LocalTransferResult } from '../shared/file-types.ts';
import type { DownloadFileRequest, ExecRequest, HostListing, PveOutcome, PveRequest, ReadFileRequest, ToolExecutor, UploadFileRequest, WriteFileRequest } from '../shared/tool-executor.ts';
import { VERSION } from '../shared/version.ts';
import { listDirectory, readFile, writeFileAtomic } from './file-ops.ts';
import { readFromContainer, writeIntoContainer } from './container-files.ts';
import { downloadToLocal, uploadFromLocal } from './local-files.ts';
import type { RelayOperations } from './operations.ts';
import type { HostPool } from './ssh-pool.ts';


export class LocalExecutor implements ToolExecutor {
  private readonly operations: RelayOperations;
  private readonly startedAt = new Date().toISOString();

  constructor(operations: RelayOperations) {
    this.operations = operations;
  }

  async listHosts(options: { probe: boolean }, signal: AbortSignal): Promise<Outcome<HostListing>> {
    const relayId = this.operations.config.relayId;
    const inventory = this.operations.inventory();
    let statuses: HostStatus[] | null = null;
    if (options.probe && inventory.length > 0) {
      const probed = await this.operations.run({ op: 'probe', hosts: [], timeoutMs: PROBE_TIMEOUT_MS }, () => undefined, signal);
      if (!probed.ok) return probed;
      if (probed.value.op !== 'probe') return failure('internal', 'A probe returned something else.');
      statuses = probed.value.hosts;
    }
    return success({
      relays: [{ id: relayId, connected: true, version: VERSION, connectedSince: this.startedAt }],
      hosts: hostViews(relayId, inventory, statuses),
    });
  }

  async exec(request: ExecRequest, signal: AbortSignal): Promise<Outcome<ExecOutcome>> {
    const host = selectHost(
      this.operations.inventory().map((entry) => entry.name),
      request.host,
    );
    if (!host.ok) return host;
    const output = { stdout: '', stderr: '' };
    const result = await this.operations.run(
      { op: 'exec', host: host.value, command: request.command, timeoutMs: request.timeoutMs, maxChars: request.maxChars, ...(request.guest ? { guest: request.guest } : {}) },
      (stream, text) => {
        output[stream] += text;
      },
      signal,
    );
    if (!result.ok) return result;
    if (result.value.op !== 'exec') return failure('internal', 'A command returned another kind of result.');
    return success(execOutcomeFrom(host.value, result.value, output.stdout, output.stderr, request.timeoutMs));
  }

  async proxmox(request: PveRequest, signal: AbortSignal): Promise<Outcome<PveOutcome>> {
    const host = selectHost(this.operations.inventory().map((entry) => entry.name), request.host);
    if (!host.ok) return host;
    const { host: _requested, ...rest } = request;
    const result = await this.operations.run({ op: 'pve', ...rest, host: host.value }, () => undefined, signal);
    if (!result.ok) return result;
    if (result.value.op !== 'pve') return failure('internal', 'A pct/qm command returned another kind of result.');
    return success({ host: host.value, exitCode: result.value.exitCode, timedOut: result.value.timedOut, stdout: result.value.stdout, stderr: result.value.stderr });
  }

  async readFile(request: ReadFileRequest, signal: AbortSignal): Promise<Outcome<FileReadResult & { host: string }>> {
    const target = this.pool(request.host);
    if (!target.ok) return target;
    const refusal = request.ctid !== undefined ? this.operations.notProxmoxRefusal(target.value.host) : null;
    if (refusal) return refusal;
    const read = request.ctid !== undefined ? await readFromContainer(target.value.pool, request.ctid, request, signal) : await readFile(target.value.pool, request, signal);
    if (!read.ok) return read;
    return success({ host: target.value.host, info: read.value.info, dataBase64: read.value.data.toString('base64'), offset: read.value.offset, eof: read.value.eof });
  }

  async writeFile(request: WriteFileRequest, signal: AbortSignal): Promise<Outcome<FileWriteResult & { host: string }>> {
    const target = this.pool(request.host);
    if (!target.ok) return target;
    const refusal = this.operations.readOnlyRefusal(target.value.host, 'write files') ?? (request.ctid !== undefined ? this.operations.notProxmoxRefusal(target.value.host) : null);
    if (refusal) return refusal;
    const write = {
      path: request.path,
      source: request.content,
      journal: this.operations.journal(target.value.host),
      maxBytes: request.maxBytes,
      ...(request.permissions !== undefined ? { permissions: request.permissions } : {}),
      overwrite: request.overwrite,
      createDirs: request.createDirs,
    };
    const written = request.ctid !== undefined ? await writeIntoContainer(target.value.pool, request.ctid, write, signal) : await writeFileAtomic(target.value.pool, write, signal);
    return written.ok ? success({ ...written.value, host: target.value.host }) : written;
  }

  async listDirectory(request: { host?: string; path: string }, signal: AbortSignal): Promise<Outcome<DirectoryListing & { host: string }>> {
    const target = this.pool(request.host);
    if (!target.ok) return target;
    const listed = await listDirectory(target.value.pool, request.path, signal);
    return listed.ok ? success({ ...listed.value, host: target.value.host }) : listed;
  }

  async uploadFile(request: UploadFileRequest, signal: AbortSignal): Promise<Outcome<LocalTransferResult & { host: string }>> {
    const target = this.pool(request.host);
    if (!target.ok) return target;
    const refusal = this.operations.readOnlyRefusal(target.value.host, 'write files') ?? (request.ctid !== undefined ? this.operations.notProxmoxRefusal(target.value.host) : null);
    if (refusal) return refusal;
    const uploaded = await uploadFromLocal(target.value.pool, { ...request, journal: this.operations.journal(target.value.host) }, signal);
    return uploaded.ok ? success({ ...uploaded.value, host: target.value.host }) : uploaded;
  }

  async downloadFile(request: DownloadFileRequest, signal: AbortSignal): Promise<Outcome<LocalTransferResult & { host: string }>> {
    const target = this.pool(request.host);
    if (!target.ok) return target;
    const refusal = request.ctid !== undefined ? this.operations.notProxmoxRefusal(target.value.host) : null;
    if (refusal) return refusal;
    const downloaded = await downloadToLocal(target.value.pool, request, signal);
    return downloaded.ok ? success({ ...downloaded.value, host: target.value.host }) : downloaded;
  }

  private pool(requested: string | undefined): Outcome<{ host: string; pool: HostPool }> {
    const host = selectHost(this.operations.inventory().map((entry) => entry.name), requested);
    if (!host.ok) return host;
    const pool = this.operations.pool(host.value);
    return pool ? success({ host: host.value, pool }) : failure('host_not_configured', `Host "${host.value}" is not configured.`);
  }
}
