/**
 * The stdio mode's executor: the same relay operations, called in-process instead of through the
 * Worker and the hub. Results take the same shape as the hub executor's, so the shared tool
 * definitions format them identically. There is no relay, so it has no ping (and no relay_ping tool).
 */
import { failure, success, type Outcome } from '../shared/errors.ts';
import { execOutcomeFrom, type ExecOutcome } from '../shared/exec-output.ts';
import { selectHost } from '../shared/host-selection.ts';
import type { CheckCommandExecutor, CommandCheckResult } from '../shared/check-command-tool.ts';
import { underSudoText, type ClassifyCommand, type CommandClassification } from '../shared/shell/command-class.ts';
import { hostViews } from '../shared/host-views.ts';
import { LatestLineTracker } from '../shared/latest-line.ts';
import { PROBE_TIMEOUT_MS } from '../shared/limits.ts';
import type { HostStatus } from '../shared/protocol.ts';
import type { JobExecutor } from '../shared/jobs.ts';
import type { DirectoryListing, FileReadResult, FileWriteResult, LocalTransferResult } from '../shared/file-types.ts';
import type {
  DownloadFileRequest,
  DownloadLinkRequest,
  ExecRequest,
  HostListing,
  PveOutcome,
  PveRequest,
  ReadFileRequest,
  ToolExecutor,
  UploadFileRequest,
  UploadLinkRequest,
  WriteFileRequest,
} from '../shared/tool-executor.ts';
import type { ImageKitConfig } from '../shared/imagekit/config.ts';
import type { ImageKitService } from '../shared/imagekit/service.ts';
import {
  confirmDownload as confirmImageKitDownload,
  confirmUpload as confirmImageKitUpload,
  requestDownload as requestImageKitDownload,
  requestUpload as requestImageKitUpload,
  type BridgeContext,
  type ImageKitDownloadDone,
  type ImageKitDownloadOffer,
  type ImageKitUploadDone,
  type ImageKitUploadOffer,
  type TransferHost,
  type TransferStore,
} from '../shared/imagekit/transfers.ts';
import { VERSION } from '../shared/version.ts';
import { listDirectory, readFile, statFile, writeFileAtomic } from './file-ops.ts';
import { readFromContainer, statInContainerFile, writeIntoContainer } from './container-files.ts';
import { downloadToLocal, uploadFromLocal } from './local-files.ts';
import type { RelayOperations } from './operations.ts';
import type { ConfirmRule } from './config.ts';
import { confirmLocally, type LocalConfirmRequest } from './local-confirm.ts';
import type { ConfirmCall } from '../shared/confirm-call.ts';
import type { HostChannels } from './ssh-pool.ts';
import { formatCount } from '../shared/format-count.ts';

/** What ImageKit transfers need in the stdio mode. */
export interface LocalImageKit {
  config: ImageKitConfig;
  service: ImageKitService;
  store: TransferStore;
  maxFileSize: number;
}

/** The stdio mode has one user: the person running it. */
const STDIO_OWNER = 'stdio';

export class LocalExecutor implements ToolExecutor {
  private readonly operations: RelayOperations;
  private readonly imagekit: LocalImageKit | null;
  private readonly startedAt = new Date().toISOString();
  // The background-job methods (relay/local-jobs.ts): present only when jobs are given, since the
  // job tools are offered where the executor has them.
  readonly startJob?: JobExecutor['startJob'];
  readonly jobStatus?: JobExecutor['jobStatus'];
  readonly jobOutput?: JobExecutor['jobOutput'];
  readonly cancelJob?: JobExecutor['cancelJob'];
  readonly listJobs?: JobExecutor['listJobs'];
  /** ssh_check_command: offered when a classifier is given. */
  readonly checkCommand?: CheckCommandExecutor['checkCommand'];

  private readonly confirmRules: ReadonlyMap<string, ConfirmRule>;
  private readonly classify: ClassifyCommand | null;

  /** `confirmRules`: per host name, the classes that wait for the user's confirmation (relay/local-confirm.ts; needs `classify`). */
  constructor(
    operations: RelayOperations,
    imagekit: LocalImageKit | null = null,
    jobs: JobExecutor | null = null,
    classify: ClassifyCommand | null = null,
    confirmRules: ReadonlyMap<string, ConfirmRule> = new Map(),
  ) {
    this.operations = operations;
    this.imagekit = imagekit;
    this.classify = classify;
    if (confirmRules.size > 0 && !classify) throw new Error('confirm rules need the command classifier');
    this.confirmRules = confirmRules;
    if (classify) this.checkCommand = (request) => this.classifyOnly(classify, request);
    if (jobs) {
      this.startJob = async (request, signal) => {
        const host = selectHost(
          this.operations.inventory().map((entry) => entry.name),
          request.host,
        );
        if (!host.ok) return host;
        const confirmed = await this.confirmed(host.value, request, signal);
        return confirmed.ok ? jobs.startJob({ ...request, host: host.value }, signal) : confirmed;
      };
      this.jobStatus = (request, signal) => jobs.jobStatus(request, signal);
      this.jobOutput = (request, signal) => jobs.jobOutput(request, signal);
      this.cancelJob = (request, signal) => jobs.cancelJob(request, signal);
      this.listJobs = (request, signal) => jobs.listJobs(request, signal);
    }
  }

  /** The config's own-confirmation rule for `host`, applied to this command (nothing to do on hosts without one). */
  private confirmed(
    host: string,
    request: { command: string; timeoutMs: number; guest?: LocalConfirmRequest['guest']; confirm?: ConfirmCall },
    signal: AbortSignal,
  ): Promise<Outcome<void>> {
    const rule = this.confirmRules.get(host);
    if (!rule || !this.classify) return Promise.resolve(success(undefined));
    return confirmLocally(
      rule,
      this.classify,
      { host, guest: request.guest ?? null, command: request.command, timeoutMs: request.timeoutMs, ...(request.confirm ? { confirm: request.confirm } : {}) },
      signal,
    );
  }

  private bridge(): Outcome<BridgeContext> {
    if (!this.imagekit) return failure('invalid_argument', 'ImageKit is not configured (ENABLE_IMAGEKIT and the IMAGEKIT_* variables).');
    return success({ ...this.imagekit, ownerId: STDIO_OWNER, host: this.transferHost() });
  }

  /** How an ImageKit transfer reaches a host here: the same file operations as the file tools. */
  private transferHost(): TransferHost {
    return {
      checkWritable: async (target) => {
        const resolved = this.pool(target.host);
        if (!resolved.ok) return resolved;
        const { host, pool } = resolved.value;
        const refusal = this.operations.readOnlyRefusal(host, 'write files') ?? (target.ctid !== undefined ? this.operations.notProxmoxRefusal(host) : null);
        if (refusal) return refusal;
        const signal = AbortSignal.timeout(60_000);
        const existing =
          target.ctid !== undefined ? await statInContainerFile(pool, target.ctid, target.path, signal) : await statFile(pool, target.path, signal);
        if (existing.ok) {
          if (existing.value.type === 'directory') return failure('path_is_directory', `${target.path} is a directory.`);
          if (!target.overwrite) return failure('already_exists', `${target.path} already exists on ${host}. Pass overwrite=true to replace it.`);
        } else if (existing.error.code !== 'path_not_found') {
          return existing;
        }
        return success({ host });
      },
      write: async (target, body, size) => {
        const resolved = this.pool(target.host);
        if (!resolved.ok) return resolved;
        const { host, pool } = resolved.value;
        const refusal = this.operations.readOnlyRefusal(host, 'write files');
        if (refusal) return refusal;
        const write = {
          path: target.path,
          source: body,
          journal: this.operations.journal(host),
          maxBytes: size,
          expectedSize: size,
          ...(target.permissions !== undefined ? { permissions: target.permissions } : {}),
          overwrite: target.overwrite,
          createDirs: false,
        };
        const signal = AbortSignal.timeout(30 * 60_000);
        const written = target.ctid !== undefined ? await writeIntoContainer(pool, target.ctid, write, signal) : await writeFileAtomic(pool, write, signal);
        return written.ok ? success({ ...written.value, host }) : written;
      },
      read: async (target, maxBytes) => {
        const read = await this.readFile(
          {
            host: target.host,
            ...(target.ctid !== undefined ? { ctid: target.ctid } : {}),
            path: target.path,
            offset: 0,
            length: maxBytes + 1,
            maxBytes: maxBytes + 1,
          },
          AbortSignal.timeout(30 * 60_000),
        );
        if (!read.ok) return read;
        const data = Buffer.from(read.value.dataBase64, 'base64');
        if (data.length > maxBytes) return failure('file_too_large', `${target.path} is larger than MAX_FILE_SIZE (${formatCount(maxBytes)} bytes).`);
        return success({ host: read.value.host, data });
      },
    };
  }

  async imagekitRequestUpload(request: UploadLinkRequest, _signal: AbortSignal): Promise<Outcome<ImageKitUploadOffer>> {
    const context = this.bridge();
    if (!context.ok) return context;
    const host = selectHost(
      this.operations.inventory().map((entry) => entry.name),
      request.host,
    );
    if (!host.ok) return host;
    return requestImageKitUpload(context.value, { ...request, host: host.value });
  }

  async imagekitConfirmUpload(request: { transferId: string; fileId?: string }, _signal: AbortSignal): Promise<Outcome<ImageKitUploadDone>> {
    const context = this.bridge();
    return context.ok ? confirmImageKitUpload(context.value, request) : context;
  }

  async imagekitRequestDownload(request: DownloadLinkRequest, _signal: AbortSignal): Promise<Outcome<ImageKitDownloadOffer>> {
    const context = this.bridge();
    if (!context.ok) return context;
    const host = selectHost(
      this.operations.inventory().map((entry) => entry.name),
      request.host,
    );
    if (!host.ok) return host;
    return requestImageKitDownload(context.value, { ...request, host: host.value });
  }

  async imagekitConfirmDownload(request: { transferId: string }, _signal: AbortSignal): Promise<Outcome<ImageKitDownloadDone>> {
    const context = this.bridge();
    return context.ok ? confirmImageKitDownload(context.value, request) : context;
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

  /** The stdio mode has no team policy: the check says what the command is, and that nothing here decides on it. */
  private async classifyOnly(classify: ClassifyCommand, request: { command: string; host?: string; sudo?: boolean }): Promise<Outcome<CommandCheckResult>> {
    const host = selectHost(
      this.operations.inventory().map((entry) => entry.name),
      request.host,
    );
    if (!host.ok) return host;
    let classification: CommandClassification;
    try {
      classification = await classify(request.sudo ? underSudoText(request.command) : request.command);
    } catch (error) {
      classification = {
        class: 'unknown',
        programs: [],
        reasons: [`the command could not be classified (${error instanceof Error ? error.message : String(error)})`],
      };
    }
    return success({
      host: host.value,
      ...classification,
      decision: null,
      note: 'stdio mode has no team policy or command rules: the class is for your information, and every command you send runs.',
    });
  }

  async exec(request: ExecRequest, signal: AbortSignal): Promise<Outcome<ExecOutcome>> {
    const host = selectHost(
      this.operations.inventory().map((entry) => entry.name),
      request.host,
    );
    if (!host.ok) return host;
    // Under sudo, the confirmation rule sees what runs: `sudo sh -c COMMAND` (at least privileged).
    const confirmed = await this.confirmed(host.value, request.sudo ? { ...request, command: underSudoText(request.command) } : request, signal);
    if (!confirmed.ok) return confirmed;
    const output = { stdout: '', stderr: '' };
    // Only when the client asked for progress: the reporter reads the latest line from here.
    const latest = request.progress ? new LatestLineTracker(request.maxChars) : null;
    if (latest) request.progress?.attach(() => latest.latest());
    const result = await this.operations.run(
      {
        op: 'exec',
        host: host.value,
        command: request.command,
        timeoutMs: request.timeoutMs,
        maxChars: request.maxChars,
        ...(request.guest ? { guest: request.guest } : {}),
        ...(request.pty ? { pty: request.pty } : {}),
        ...(request.sudo ? { sudo: true } : {}),
      },
      (stream, text) => {
        output[stream] += text;
        latest?.push(stream, text);
      },
      signal,
    );
    if (!result.ok) return result;
    if (result.value.op !== 'exec') return failure('internal', 'A command returned another kind of result.');
    return success(execOutcomeFrom(host.value, result.value, output.stdout, output.stderr, request.timeoutMs));
  }

  async proxmox(request: PveRequest, signal: AbortSignal): Promise<Outcome<PveOutcome>> {
    const host = selectHost(
      this.operations.inventory().map((entry) => entry.name),
      request.host,
    );
    if (!host.ok) return host;
    const { host: _requested, ...rest } = request;
    const result = await this.operations.run({ op: 'pve', ...rest, host: host.value }, () => undefined, signal);
    if (!result.ok) return result;
    if (result.value.op !== 'pve') return failure('internal', 'A pct/qm command returned another kind of result.');
    return success({
      host: host.value,
      exitCode: result.value.exitCode,
      timedOut: result.value.timedOut,
      stdout: result.value.stdout,
      stderr: result.value.stderr,
    });
  }

  async readFile(request: ReadFileRequest, signal: AbortSignal): Promise<Outcome<FileReadResult & { host: string }>> {
    const target = this.pool(request.host);
    if (!target.ok) return target;
    const refusal = request.ctid !== undefined ? this.operations.notProxmoxRefusal(target.value.host) : null;
    if (refusal) return refusal;
    const read =
      request.ctid !== undefined
        ? await readFromContainer(target.value.pool, request.ctid, request, signal)
        : await readFile(target.value.pool, request, signal);
    if (!read.ok) return read;
    return success({
      host: target.value.host,
      info: read.value.info,
      dataBase64: read.value.data.toString('base64'),
      offset: read.value.offset,
      eof: read.value.eof,
    });
  }

  async writeFile(request: WriteFileRequest, signal: AbortSignal): Promise<Outcome<FileWriteResult & { host: string }>> {
    const target = this.pool(request.host);
    if (!target.ok) return target;
    const refusal =
      this.operations.readOnlyRefusal(target.value.host, 'write files') ??
      (request.ctid !== undefined ? this.operations.notProxmoxRefusal(target.value.host) : null);
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
    const written =
      request.ctid !== undefined
        ? await writeIntoContainer(target.value.pool, request.ctid, write, signal)
        : await writeFileAtomic(target.value.pool, write, signal);
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
    const refusal =
      this.operations.readOnlyRefusal(target.value.host, 'write files') ??
      (request.ctid !== undefined ? this.operations.notProxmoxRefusal(target.value.host) : null);
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

  /** The host's pool as stdio mode's one user uses it (no caller). */
  private pool(requested: string | undefined): Outcome<{ host: string; pool: HostChannels }> {
    const host = selectHost(
      this.operations.inventory().map((entry) => entry.name),
      requested,
    );
    if (!host.ok) return host;
    const pool = this.operations.pool(host.value);
    return pool ? success({ host: host.value, pool: pool.forCaller(undefined) }) : failure('host_not_configured', `Host "${host.value}" is not configured.`);
  }
}
