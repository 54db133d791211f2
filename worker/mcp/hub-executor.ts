/**
 * The edge/local executor: each tool call becomes one request to the hub Durable Object of the
 * relay that serves the host. Hosts arrive as `relay/host`, already resolved and checked by the
 * policed executor in front of this one. An aborted MCP request (notifications/cancelled) sends a
 * cancel to the relay, which stops the remote process; the relay's answer, marked cancelled,
 * still ends the call.
 */
import { failure, success, type Outcome } from '../../shared/errors.ts';
import { execOutcomeFrom, type ExecOutcome } from '../../shared/exec-output.ts';
import { toBase64 } from '../../shared/file-tools.ts';
import type { DirectoryListing, FileReadResult, FileWriteResult } from '../../shared/file-types.ts';
import { hostViews } from '../../shared/host-views.ts';
import { sha256Hex } from '../../shared/password-hash.ts';
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
    void hub.cancel(id);
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await run(id);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
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
        const listed = await hub.listHosts(probe, crypto.randomUUID());
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
    const reply = await cancellable<HostReply>(target.value.hub, signal, (id) => target.value.hub.execCommand(id, { ...request, host: target.value.host }));
    if (!reply.ok) return reply;
    const { result, stdout, stderr, host } = reply.value;
    if (result.op !== 'exec') return failure('protocol_error', 'The relay answered a command with another kind of result.');
    return success(execOutcomeFrom(host, result, stdout, stderr, request.timeoutMs));
  }

  async proxmox(request: PveRequest, signal: AbortSignal): Promise<Outcome<PveOutcome>> {
    const target = onRelay(this.env, request.host);
    if (!target.ok) return target;
    const reply = await cancellable<HostReply>(target.value.hub, signal, (id) => target.value.hub.pve(id, { ...request, host: target.value.host }));
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
    const reply = await hub.execute(crypto.randomUUID(), { op: 'ping' }, PING_DEADLINE_MS);
    if (!reply.ok) return reply;
    if (reply.value.result.op !== 'ping') return failure('protocol_error', 'The relay answered a ping with something else.');
    return success({ relayId: request.relay, relayVersion: reply.value.result.relayVersion, roundTripMs: Date.now() - started });
  }

  async readFile(request: ReadFileRequest, _signal: AbortSignal): Promise<Outcome<FileReadResult & { host: string }>> {
    const target = onRelay(this.env, request.host);
    if (!target.ok) return target;
    const reply = await target.value.hub.readFile(crypto.randomUUID(), { ...request, host: target.value.host });
    if (!reply.ok) return reply;
    const { result, data, host } = reply.value;
    if (result.op !== 'read_file') return failure('protocol_error', 'The relay answered a read with another kind of result.');
    return success({ host, info: result.info, dataBase64: toBase64(data ?? new Uint8Array()), offset: result.offset, eof: result.eof });
  }

  async writeFile(request: WriteFileRequest, _signal: AbortSignal): Promise<Outcome<FileWriteResult & { host: string }>> {
    const target = onRelay(this.env, request.host);
    if (!target.ok) return target;
    const reply = await target.value.hub.writeFile(crypto.randomUUID(), { ...request, host: target.value.host });
    if (!reply.ok) return reply;
    const { result, host } = reply.value;
    if (result.op !== 'write_file') return failure('protocol_error', 'The relay answered a write with another kind of result.');
    return success({ host, path: result.path, size: result.size, sha256: result.sha256, mode: result.mode, replaced: result.replaced });
  }

  async listDirectory(request: { host?: string; path: string }, _signal: AbortSignal): Promise<Outcome<DirectoryListing & { host: string }>> {
    const target = onRelay(this.env, request.host);
    if (!target.ok) return target;
    const reply = await target.value.hub.listDirectory(crypto.randomUUID(), { ...request, host: target.value.host });
    if (!reply.ok) return reply;
    const { result, host } = reply.value;
    if (result.op !== 'list_directory') return failure('protocol_error', 'The relay answered a listing with another kind of result.');
    return success({ host, path: result.path, entries: result.entries, truncated: result.truncated });
  }

  async requestUpload(request: UploadLinkRequest, signal: AbortSignal): Promise<Outcome<LinkOffer>> {
    const target = onRelay(this.env, request.host);
    if (!target.ok) return target;
    // Check the target now, so a refusal comes back to the assistant rather than to curl later.
    const probe = await target.value.hub.readFile(crypto.randomUUID(), { host: target.value.host, ...(request.ctid !== undefined ? { ctid: request.ctid } : {}), path: request.path, offset: 0, length: 0, maxBytes: 0 });
    if (probe.ok && !request.overwrite) return failure('already_exists', `${request.path} already exists ${request.ctid !== undefined ? `in container ${request.ctid} on` : 'on'} ${target.value.host}.`);
    if (!probe.ok && probe.error.code !== 'path_not_found') return probe;
    return this.makeLink('upload', target.value, request.ctid, request.path, { ...(request.permissions !== undefined ? { permissions: request.permissions } : {}), overwrite: request.overwrite }, signal);
  }

  async requestDownload(request: DownloadLinkRequest, signal: AbortSignal): Promise<Outcome<LinkOffer>> {
    const target = onRelay(this.env, request.host);
    if (!target.ok) return target;
    const probe = await target.value.hub.readFile(crypto.randomUUID(), { host: target.value.host, ...(request.ctid !== undefined ? { ctid: request.ctid } : {}), path: request.path, offset: 0, length: 0, maxBytes: 0 });
    if (!probe.ok) return probe;
    const { result } = probe.value;
    if (result.op !== 'read_file') return failure('protocol_error', 'The relay answered a check with another kind of result.');
    const limit = this.settings.tools.maxFileSize;
    if (result.info.size > limit) {
      return failure('file_too_large', `${request.path} is ${result.info.size.toLocaleString('en-US')} bytes, more than MAX_FILE_SIZE (${limit.toLocaleString('en-US')}).`);
    }
    return this.makeLink('download', target.value, request.ctid, request.path, { overwrite: false }, signal);
  }

  private async makeLink(kind: 'upload' | 'download', target: OnRelay, ctid: string | undefined, path: string, options: { permissions?: number; overwrite: boolean }, _signal: AbortSignal): Promise<Outcome<LinkOffer>> {
    const id = toHex(crypto.getRandomValues(new Uint8Array(16)));
    // 256 bits; only its hash is stored and it is never logged.
    const token = toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
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

function toHex(bytes: Uint8Array): string {
  return [...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join('');
}

function toBase64Url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}
