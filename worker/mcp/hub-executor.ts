/**
 * The edge/local executor behind policy: each call arrives with the route the policy gate resolved
 * (worker/team/gate-call.ts) and goes to that relay through the protocol adapter
 * (worker/relay/relay-adapter.ts), which builds the request and reads the reply. Here: what a tool
 * does beyond one request (transfer links, ImageKit transfers, listings across relays).
 */
import { concatBytes } from '../../shared/byte-streams.ts';
import { randomBytes, toBase64Url, toHex } from '../../shared/encoding.ts';
import { failure, success, type Outcome } from '../../shared/errors.ts';
import type { ExecOutcome } from '../../shared/exec-output.ts';
import type { DirectoryListing, FileReadResult, FileWriteResult } from '../../shared/file-types.ts';
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
  UploadLinkRequest,
  WriteFileRequest,
} from '../../shared/tool-executor.ts';
import type { WorkerSettings } from '../settings.ts';
import type { TransferRecord } from '../transfers/transfer-link.ts';
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
import type { HostRoute } from '../relay/host-route.ts';
import { RelayAdapter } from '../relay/relay-adapter.ts';
import type { RelayState } from '../relay/relay-hub.ts';
import { formatCount } from '../../shared/format-count.ts';
import type { Caller } from './policed-executor.ts';

/** Check the target now, so a refusal (an existing file without overwrite) comes back to the assistant, not to curl later. */
async function checkWritable(
  relay: RelayAdapter,
  route: HostRoute,
  request: { ctid?: string; path: string; overwrite: boolean },
  shown: string,
): Promise<Outcome<void>> {
  const existing = await relay.stat(route, { ...(request.ctid !== undefined ? { ctid: request.ctid } : {}), path: request.path });
  if (existing.ok) {
    return request.overwrite
      ? success(undefined)
      : failure('already_exists', `${request.path} already exists ${request.ctid !== undefined ? `in container ${request.ctid} on` : 'on'} ${shown}.`);
  }
  return existing.error.code === 'path_not_found' ? success(undefined) : existing;
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
        return failure('file_too_large', `The file is larger than MAX_FILE_SIZE (${formatCount(limit)} bytes).`);
      }
      chunks.push(value);
    }
  } catch (error) {
    return failure('ssh_error', `Reading the file failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  return success(concatBytes(chunks, total));
}

export class HubExecutor {
  private readonly env: Env;
  /** Who the session belongs to; transfer links are bound to them (and to their grant, so a link dies with a revoked sign-in). */
  private readonly caller: Caller;
  private readonly settings: WorkerSettings;
  private readonly relay: RelayAdapter;

  constructor(env: Env, caller: Caller, settings: WorkerSettings) {
    this.env = env;
    this.caller = caller;
    this.settings = settings;
    this.relay = new RelayAdapter(env, caller.userId);
  }

  /** Every host of the given relays (their state as the caller read it), probed at once when asked. */
  async listRelays(relays: readonly RelayState[], probe: boolean): Promise<Outcome<HostListing>> {
    const listings = await Promise.all(relays.map((state) => this.relay.listHosts(state, probe)));
    const merged: HostListing = { relays: [], hosts: [] };
    for (const listing of listings) {
      if (!listing.ok) return listing;
      merged.relays.push(...listing.value.relays);
      merged.hosts.push(...listing.value.hosts);
    }
    return success(merged);
  }

  exec(route: HostRoute, request: ExecRequest, signal: AbortSignal): Promise<Outcome<ExecOutcome>> {
    return this.relay.exec(route, request, signal);
  }

  proxmox(route: HostRoute, request: PveRequest, signal: AbortSignal): Promise<Outcome<PveOutcome>> {
    return this.relay.pve(route, request, signal);
  }

  /** Ping one relay (the policed executor picks which). */
  ping(relay: string): Promise<Outcome<RelayPing>> {
    return this.relay.ping(relay);
  }

  readFile(route: HostRoute, request: ReadFileRequest): Promise<Outcome<FileReadResult & { host: string }>> {
    return this.relay.readFile(route, request);
  }

  writeFile(route: HostRoute, request: WriteFileRequest): Promise<Outcome<FileWriteResult & { host: string }>> {
    return this.relay.writeFile(route, request);
  }

  listDirectory(route: HostRoute, request: { path: string }): Promise<Outcome<DirectoryListing & { host: string }>> {
    return this.relay.listDirectory(route, request);
  }

  async requestUpload(route: HostRoute, request: UploadLinkRequest): Promise<Outcome<LinkOffer>> {
    const writable = await checkWritable(this.relay, route, request, route.host);
    if (!writable.ok) return writable;
    return this.makeLink('upload', route, request.ctid, request.path, {
      ...(request.permissions !== undefined ? { permissions: request.permissions } : {}),
      overwrite: request.overwrite,
    });
  }

  async requestDownload(route: HostRoute, request: DownloadLinkRequest): Promise<Outcome<LinkOffer>> {
    const info = await this.relay.stat(route, { ...(request.ctid !== undefined ? { ctid: request.ctid } : {}), path: request.path });
    if (!info.ok) return info;
    const limit = this.settings.tools.maxFileSize;
    if (info.value.size > limit) {
      return failure('file_too_large', `${request.path} is ${formatCount(info.value.size)} bytes, more than MAX_FILE_SIZE (${formatCount(limit)}).`);
    }
    return this.makeLink('download', route, request.ctid, request.path, { overwrite: false });
  }

  /** The host and path of one of the caller's ImageKit transfers (the policed executor checks policy on them before a confirm). */
  async imagekitPeek(transferId: string): Promise<{ host: string; ctid?: string; path: string; kind: 'upload' | 'download' } | null> {
    return transferState(this.env, transferId).peek(this.caller.userId);
  }

  /** `request.host` is the name the transfer is recorded under (relay/host, checked again at confirm); the bytes go by `route`. */
  async imagekitRequestUpload(route: HostRoute, request: UploadLinkRequest & { host: string }): Promise<Outcome<ImageKitUploadOffer>> {
    const bridge = await this.imagekitBridge(route);
    return bridge.ok ? requestImageKitUpload(bridge.value, request) : bridge;
  }

  /** `route` is where the transfer's recorded host resolves now (the gate checked it again). */
  async imagekitConfirmUpload(route: HostRoute, request: { transferId: string; fileId?: string }): Promise<Outcome<ImageKitUploadDone>> {
    const bridge = await this.imagekitBridge(route);
    return bridge.ok ? confirmImageKitUpload(bridge.value, request) : bridge;
  }

  async imagekitRequestDownload(route: HostRoute, request: DownloadLinkRequest & { host: string }): Promise<Outcome<ImageKitDownloadOffer>> {
    const bridge = await this.imagekitBridge(route);
    return bridge.ok ? requestImageKitDownload(bridge.value, request) : bridge;
  }

  async imagekitConfirmDownload(route: HostRoute, request: { transferId: string }): Promise<Outcome<ImageKitDownloadDone>> {
    const bridge = await this.imagekitBridge(route);
    return bridge.ok ? confirmImageKitDownload(bridge.value, request) : bridge;
  }

  private async imagekitBridge(route: HostRoute): Promise<Outcome<BridgeContext>> {
    const config = this.settings.imagekit;
    if (!config) return failure('invalid_argument', 'ImageKit is not configured on this server (ENABLE_IMAGEKIT and the IMAGEKIT_* settings).');
    const { ImageKitService } = await import('../../shared/imagekit/service.ts');
    return success({
      config,
      service: new ImageKitService(config),
      store: durableTransferStore(this.env),
      host: this.transferHost(route),
      ownerId: this.caller.userId,
      maxFileSize: this.settings.tools.maxFileSize,
    });
  }

  /**
   * How ImageKit transfers reach hosts: through the relay, as the link tools do. Every target of a
   * bridge is the one host the gate resolved for this call, so the bytes go by `route`; the
   * target's `host` is only the name the transfer is recorded and shown under.
   */
  private transferHost(route: HostRoute): TransferHost {
    const where = (target: { ctid?: string; path: string }): { ctid?: string; path: string } => ({
      ...(target.ctid !== undefined ? { ctid: target.ctid } : {}),
      path: target.path,
    });
    return {
      checkWritable: async (target) => {
        const writable = await checkWritable(this.relay, route, target, route.host);
        return writable.ok ? success({ host: target.host }) : writable;
      },
      write: async (target, body, size) => {
        const written = await this.relay.writeFromBody(
          route,
          { ...where(target), ...(target.permissions !== undefined ? { permissions: target.permissions } : {}), overwrite: target.overwrite, maxBytes: size },
          body,
          size,
        );
        return written.ok ? success({ ...written.value, host: target.host }) : written;
      },
      read: async (target, maxBytes) => {
        // Its size first, so a file that is too large is refused plainly, before any byte moves.
        const info = await this.relay.stat(route, where(target));
        if (!info.ok) return info;
        if (info.value.size > maxBytes) {
          return failure('file_too_large', `${target.path} is ${formatCount(info.value.size)} bytes, more than MAX_FILE_SIZE (${formatCount(maxBytes)}).`);
        }
        const opened = await this.relay.readAsStream(route, { ...where(target), maxBytes });
        if (!opened.ok) return opened;
        const data = await collect(opened.value, maxBytes);
        return data.ok ? success({ host: target.host, data: data.value }) : data;
      },
    };
  }

  private async makeLink(
    kind: 'upload' | 'download',
    target: HostRoute,
    ctid: string | undefined,
    path: string,
    options: { permissions?: number; overwrite: boolean },
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
      ...(this.caller.grantId !== undefined ? { grantId: this.caller.grantId } : {}),
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
