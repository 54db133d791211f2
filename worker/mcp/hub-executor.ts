/**
 * The edge/local executor: each tool call becomes one request to the hub Durable Object of the
 * relay that serves the host. Hosts arrive as `relay/host`, already resolved and checked by the
 * policed executor in front of this one. An aborted MCP request (notifications/cancelled) sends a
 * cancel to the relay, which stops the remote process; the relay's answer, marked cancelled,
 * still ends the call.
 */
import { waitUntil } from 'cloudflare:workers';
import { concatBytes } from '../../shared/byte-streams.ts';
import { randomBytes, toBase64Url, toHex } from '../../shared/encoding.ts';
import { failure, success, type Outcome } from '../../shared/errors.ts';
import { execOutcomeFrom, type ExecOutcome } from '../../shared/exec-output.ts';
import { toBase64 } from '../../shared/file-tools.ts';
import type { DirectoryListing, FileReadResult, FileWriteResult } from '../../shared/file-types.ts';
import { hostViews } from '../../shared/host-views.ts';
import { sha256Hex } from '../auth/password-hash.ts';
import type {
  DownloadLinkRequest,
  ExecRequest,
  HostListing,
  LinkOffer,
  PveOutcome,
  PveRequest,
  ReadFileRequest,
  RelayPing,
  ToolExecutor,
  UploadLinkRequest,
  WriteFileRequest,
} from '../../shared/tool-executor.ts';
import { teamDirectory } from '../team/team-directory.ts';
import type { WorkerSettings } from '../settings.ts';
import type { TransferRecord } from '../transfers/transfer-link.ts';
import { relayHub } from '../relay/hub-stub.ts';
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
} from '../../shared/imagekit/transfers.ts';
import { durableTransferStore, transferState } from '../imagekit/transfer-state.ts';
import type { OperationReply, RelayHub } from '../relay/relay-hub.ts';

/** What the hub answers for a request on a host. */
type HostReply = Outcome<OperationReply & { host: string }>;

const PING_DEADLINE_MS = 5_000;

interface OnRelay {
  hub: DurableObjectStub<RelayHub>;
  relay: string;
  host: string;
}

/**
 * Run one request under a fresh id; an aborted MCP request (notifications/cancelled) sends a
 * cancel for that id, which stops the remote work, and the relay's answer still ends the call.
 */
async function cancellable<T>(hub: DurableObjectStub<RelayHub>, signal: AbortSignal, run: (id: string) => Promise<T>): Promise<T> {
  const id = crypto.randomUUID();
  const onAbort = (): void => {
    // Under waitUntil: a client that drops its request ends the invocation at once, and the
    // cancel frame must still reach the relay.
    waitUntil(hub.cancel(id).catch(() => undefined));
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await run(id);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** Check the target now, so a refusal (an existing file without overwrite) comes back to the assistant, not to curl later. */
async function checkWritable(target: OnRelay, request: { ctid?: string; path: string; overwrite: boolean }, userId: string): Promise<Outcome<void>> {
  const probe = await target.hub.readFile(
    crypto.randomUUID(),
    { host: target.host, ...(request.ctid !== undefined ? { ctid: request.ctid } : {}), path: request.path, offset: 0, length: 0, maxBytes: 0 },
    userId,
  );
  if (probe.ok) {
    return request.overwrite
      ? success(undefined)
      : failure('already_exists', `${request.path} already exists ${request.ctid !== undefined ? `in container ${request.ctid} on` : 'on'} ${target.host}.`);
  }
  return probe.error.code === 'path_not_found' ? success(undefined) : probe;
}

/** A stream's bytes, refused beyond `limit`. */
async function collect(stream: ReadableStream<Uint8Array>, limit: number): Promise<Outcome<Uint8Array>> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        await reader.cancel();
        return failure('file_too_large', `The file is larger than MAX_FILE_SIZE (${limit.toLocaleString('en-US')} bytes).`);
      }
      chunks.push(value);
    }
  } catch (error) {
    return failure('ssh_error', `Reading the file failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  return success(concatBytes(chunks, total));
}

/** `relay/host` → the relay's hub and the host's own name there. */
function onRelay(env: Env, qualified: string | undefined): Outcome<OnRelay> {
  const slash = qualified?.indexOf('/') ?? -1;
  if (qualified === undefined || slash <= 0) return failure('internal', 'The host was not resolved to a relay before the call.');
  const relay = qualified.slice(0, slash);
  return success({ hub: relayHub(env, relay), relay, host: qualified.slice(slash + 1) });
}

export class HubExecutor implements ToolExecutor {
  private readonly env: Env;
  /** Who the session belongs to; transfer links are bound to them. */
  private readonly caller: { userId: string; username: string; client: string | null };
  private readonly settings: WorkerSettings;

  constructor(env: Env, caller: { userId: string; username: string; client: string | null }, settings: WorkerSettings) {
    this.env = env;
    this.caller = caller;
    this.settings = settings;
  }

  async listHosts(options: { probe: boolean }, _signal: AbortSignal): Promise<Outcome<HostListing>> {
    return this.listRelays(await teamDirectory(this.env).relayNames(), options.probe);
  }

  /** Every host of the given relays, asked of their hubs at once. A relay whose probe fails still shows its hosts, with why. */
  async listRelays(relays: readonly string[], probe: boolean): Promise<Outcome<HostListing>> {
    const listings = await Promise.all(
      relays.map(async (relay) => {
        const hub = relayHub(this.env, relay);
        const listed = await hub.listHosts(probe, crypto.randomUUID(), this.caller.userId);
        if (listed.ok || !probe) return listed;
        const state = await hub.inventory();
        if (!state) return listed;
        return success({
          relays: [{ id: state.relayId, connected: state.connected, version: state.version }],
          hosts: hostViews(state.relayId, state.hosts, null, `Checking the hosts failed: [${listed.error.code}] ${listed.error.message}`),
        });
      }),
    );
    const merged: HostListing = { relays: [], hosts: [] };
    for (const listing of listings) {
      if (!listing.ok) return listing;
      merged.relays.push(...listing.value.relays);
      merged.hosts.push(...listing.value.hosts);
    }
    return success(merged);
  }

  async exec(request: ExecRequest, signal: AbortSignal): Promise<Outcome<ExecOutcome>> {
    if (signal.aborted) return failure('cancelled', 'The request was cancelled before it started; nothing ran.');
    const target = onRelay(this.env, request.host);
    if (!target.ok) return target;
    const reply = await cancellable<HostReply>(target.value.hub, signal, (id) =>
      target.value.hub.execCommand(id, { ...request, host: target.value.host }, this.caller.userId),
    );
    if (!reply.ok) return reply;
    const { result, stdout, stderr, host } = reply.value;
    if (result.op !== 'exec') return failure('protocol_error', 'The relay answered a command with another kind of result.');
    return success(execOutcomeFrom(host, result, stdout, stderr, request.timeoutMs));
  }

  async proxmox(request: PveRequest, signal: AbortSignal): Promise<Outcome<PveOutcome>> {
    const target = onRelay(this.env, request.host);
    if (!target.ok) return target;
    const reply = await cancellable<HostReply>(target.value.hub, signal, (id) =>
      target.value.hub.pve(id, { ...request, host: target.value.host }, this.caller.userId),
    );
    if (!reply.ok) return reply;
    const { result, host } = reply.value;
    if (result.op !== 'pve') return failure('protocol_error', 'The relay answered a pct/qm command with another kind of result.');
    return success({ host, exitCode: result.exitCode, timedOut: result.timedOut, stdout: result.stdout, stderr: result.stderr });
  }

  /** Ping one relay (the policed executor picks which). */
  async ping(request: { relay?: string }, _signal: AbortSignal): Promise<Outcome<RelayPing>> {
    if (request.relay === undefined) return failure('internal', 'The relay to ping was not chosen before the call.');
    const hub = relayHub(this.env, request.relay);
    const started = Date.now();
    const reply = await hub.execute(crypto.randomUUID(), { op: 'ping' }, PING_DEADLINE_MS, { userId: this.caller.userId });
    if (!reply.ok) return reply;
    if (reply.value.result.op !== 'ping') return failure('protocol_error', 'The relay answered a ping with something else.');
    return success({ relayId: request.relay, relayVersion: reply.value.result.relayVersion, roundTripMs: Date.now() - started });
  }

  async readFile(request: ReadFileRequest, _signal: AbortSignal): Promise<Outcome<FileReadResult & { host: string }>> {
    const target = onRelay(this.env, request.host);
    if (!target.ok) return target;
    const reply = await target.value.hub.readFile(crypto.randomUUID(), { ...request, host: target.value.host }, this.caller.userId);
    if (!reply.ok) return reply;
    const { result, data, host } = reply.value;
    if (result.op !== 'read_file') return failure('protocol_error', 'The relay answered a read with another kind of result.');
    return success({ host, info: result.info, dataBase64: toBase64(data ?? new Uint8Array()), offset: result.offset, eof: result.eof });
  }

  async writeFile(request: WriteFileRequest, _signal: AbortSignal): Promise<Outcome<FileWriteResult & { host: string }>> {
    const target = onRelay(this.env, request.host);
    if (!target.ok) return target;
    const reply = await target.value.hub.writeFile(crypto.randomUUID(), { ...request, host: target.value.host }, this.caller.userId);
    if (!reply.ok) return reply;
    const { result, host } = reply.value;
    if (result.op !== 'write_file') return failure('protocol_error', 'The relay answered a write with another kind of result.');
    return success({ host, path: result.path, size: result.size, sha256: result.sha256, mode: result.mode, replaced: result.replaced });
  }

  async listDirectory(request: { host?: string; path: string }, _signal: AbortSignal): Promise<Outcome<DirectoryListing & { host: string }>> {
    const target = onRelay(this.env, request.host);
    if (!target.ok) return target;
    const reply = await target.value.hub.listDirectory(crypto.randomUUID(), { ...request, host: target.value.host }, this.caller.userId);
    if (!reply.ok) return reply;
    const { result, host } = reply.value;
    if (result.op !== 'list_directory') return failure('protocol_error', 'The relay answered a listing with another kind of result.');
    return success({ host, path: result.path, entries: result.entries, truncated: result.truncated });
  }

  async requestUpload(request: UploadLinkRequest, signal: AbortSignal): Promise<Outcome<LinkOffer>> {
    const target = onRelay(this.env, request.host);
    if (!target.ok) return target;
    const writable = await checkWritable(target.value, request, this.caller.userId);
    if (!writable.ok) return writable;
    return this.makeLink(
      'upload',
      target.value,
      request.ctid,
      request.path,
      { ...(request.permissions !== undefined ? { permissions: request.permissions } : {}), overwrite: request.overwrite },
      signal,
    );
  }

  async requestDownload(request: DownloadLinkRequest, signal: AbortSignal): Promise<Outcome<LinkOffer>> {
    const target = onRelay(this.env, request.host);
    if (!target.ok) return target;
    const probe = await target.value.hub.readFile(
      crypto.randomUUID(),
      { host: target.value.host, ...(request.ctid !== undefined ? { ctid: request.ctid } : {}), path: request.path, offset: 0, length: 0, maxBytes: 0 },
      this.caller.userId,
    );
    if (!probe.ok) return probe;
    const { result } = probe.value;
    if (result.op !== 'read_file') return failure('protocol_error', 'The relay answered a check with another kind of result.');
    const limit = this.settings.tools.maxFileSize;
    if (result.info.size > limit) {
      return failure(
        'file_too_large',
        `${request.path} is ${result.info.size.toLocaleString('en-US')} bytes, more than MAX_FILE_SIZE (${limit.toLocaleString('en-US')}).`,
      );
    }
    return this.makeLink('download', target.value, request.ctid, request.path, { overwrite: false }, signal);
  }

  /** The host and path of one of the caller's ImageKit transfers (the policed executor checks policy on them before a confirm). */
  async imagekitPeek(transferId: string): Promise<{ host: string; ctid?: string; path: string; kind: 'upload' | 'download' } | null> {
    return transferState(this.env, transferId).peek(this.caller.userId);
  }

  async imagekitRequestUpload(request: UploadLinkRequest, _signal: AbortSignal): Promise<Outcome<ImageKitUploadOffer>> {
    const bridge = await this.imagekitBridge();
    return bridge.ok ? requestImageKitUpload(bridge.value, { ...request, host: request.host ?? '' }) : bridge;
  }

  async imagekitConfirmUpload(request: { transferId: string; fileId?: string }, _signal: AbortSignal): Promise<Outcome<ImageKitUploadDone>> {
    const bridge = await this.imagekitBridge();
    return bridge.ok ? confirmImageKitUpload(bridge.value, request) : bridge;
  }

  async imagekitRequestDownload(request: DownloadLinkRequest, _signal: AbortSignal): Promise<Outcome<ImageKitDownloadOffer>> {
    const bridge = await this.imagekitBridge();
    return bridge.ok ? requestImageKitDownload(bridge.value, { ...request, host: request.host ?? '' }) : bridge;
  }

  async imagekitConfirmDownload(request: { transferId: string }, _signal: AbortSignal): Promise<Outcome<ImageKitDownloadDone>> {
    const bridge = await this.imagekitBridge();
    return bridge.ok ? confirmImageKitDownload(bridge.value, request) : bridge;
  }

  private async imagekitBridge(): Promise<Outcome<BridgeContext>> {
    const config = this.settings.imagekit;
    if (!config) return failure('invalid_argument', 'ImageKit is not configured on this server (ENABLE_IMAGEKIT and the IMAGEKIT_* settings).');
    const { ImageKitService } = await import('../../shared/imagekit/service.ts');
    return success({
      config,
      service: new ImageKitService(config),
      store: durableTransferStore(this.env),
      host: this.transferHost(),
      ownerId: this.caller.userId,
      maxFileSize: this.settings.tools.maxFileSize,
    });
  }

  /** How ImageKit transfers reach hosts: through the relay's hub, as the link tools do. Hosts are relay/host. */
  private transferHost(): TransferHost {
    return {
      checkWritable: async (target) => {
        const on = onRelay(this.env, target.host);
        if (!on.ok) return on;
        const writable = await checkWritable(on.value, target, this.caller.userId);
        return writable.ok ? success({ host: target.host }) : writable;
      },
      write: async (target, body, size) => {
        const on = onRelay(this.env, target.host);
        if (!on.ok) return on;
        const reply = await on.value.hub.writeFromBody(
          crypto.randomUUID(),
          {
            host: on.value.host,
            ...(target.ctid !== undefined ? { ctid: target.ctid } : {}),
            path: target.path,
            ...(target.permissions !== undefined ? { permissions: target.permissions } : {}),
            overwrite: target.overwrite,
            maxBytes: size,
          },
          body,
          size,
          this.caller.userId,
        );
        if (!reply.ok) return reply;
        const { result } = reply.value;
        if (result.op !== 'write_file') return failure('protocol_error', 'The relay answered a write with another kind of result.');
        return success({ host: target.host, path: result.path, size: result.size, sha256: result.sha256, mode: result.mode, replaced: result.replaced });
      },
      read: async (target, maxBytes) => {
        const on = onRelay(this.env, target.host);
        if (!on.ok) return on;
        const where = { host: on.value.host, ...(target.ctid !== undefined ? { ctid: target.ctid } : {}) };
        // Its size first, so a file that is too large is refused plainly, before any byte moves.
        const probe = await on.value.hub.readFile(crypto.randomUUID(), { ...where, path: target.path, offset: 0, length: 0, maxBytes: 0 }, this.caller.userId);
        if (!probe.ok) return probe;
        if (probe.value.result.op === 'read_file' && probe.value.result.info.size > maxBytes) {
          return failure(
            'file_too_large',
            `${target.path} is ${probe.value.result.info.size.toLocaleString('en-US')} bytes, more than MAX_FILE_SIZE (${maxBytes.toLocaleString('en-US')}).`,
          );
        }
        const opened = await on.value.hub.readAsStream(
          crypto.randomUUID(),
          { host: on.value.host, ...(target.ctid !== undefined ? { ctid: target.ctid } : {}), path: target.path, maxBytes },
          this.caller.userId,
        );
        if (!opened.ok) return opened;
        const data = await collect(opened.value.stream, maxBytes);
        return data.ok ? success({ host: target.host, data: data.value }) : data;
      },
    };
  }

  private async makeLink(
    kind: 'upload' | 'download',
    target: OnRelay,
    ctid: string | undefined,
    path: string,
    options: { permissions?: number; overwrite: boolean },
    _signal: AbortSignal,
  ): Promise<Outcome<LinkOffer>> {
    const id = toHex(randomBytes(16));
    // 256 bits; only its hash is stored and it is never logged.
    const token = toBase64Url(randomBytes(32));
    const now = Date.now();
    const ttl = this.settings.linkTtlSeconds;
    const record: TransferRecord = {
      id,
      kind,
      userId: this.caller.userId,
      username: this.caller.username,
      client: this.caller.client,
      relay: target.relay,
      host: target.host,
      ...(ctid !== undefined ? { ctid } : {}),
      path,
      ...(options.permissions !== undefined ? { permissions: options.permissions } : {}),
      overwrite: options.overwrite,
      tokenHash: await sha256Hex(token),
      createdAt: now,
      expiresAt: now + ttl * 1000,
      maxBytes: this.settings.tools.maxFileSize,
      state: 'ready',
    };
    await this.env.TRANSFER_LINK.get(this.env.TRANSFER_LINK.idFromName(id)).create(record);
    return success({
      host: target.host,
      path,
      transferId: id,
      method: kind === 'upload' ? 'PUT' : 'GET',
      url: `${this.settings.publicUrl}/transfer/${id}/${token}`,
      expiresAt: new Date(record.expiresAt).toISOString(),
      expiresInSeconds: ttl,
      maxBytes: record.maxBytes,
    });
  }
}
