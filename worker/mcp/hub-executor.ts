/**
 * The edge/local executor: each tool call becomes one request to the relay hub Durable Object.
 * An aborted MCP request (notifications/cancelled) sends a cancel to the relay, which stops the
 * remote process; the relay's answer, marked cancelled, still ends the call.
 */
import { failure, success, type Outcome } from '../../shared/errors.ts';
import { execOutcomeFrom, type ExecOutcome } from '../../shared/exec-output.ts';
import { toBase64 } from '../../shared/file-tools.ts';
import type { DirectoryListing, FileReadResult, FileWriteResult } from '../../shared/file-types.ts';
import { selectHost } from '../../shared/host-selection.ts';
import { sha256Hex } from '../../shared/password-hash.ts';
import type { ExecRequest, HostListing, LinkOffer, ReadFileRequest, RelayPing, ToolExecutor, WriteFileRequest } from '../../shared/tool-executor.ts';
import type { WorkerSettings } from '../settings.ts';
import type { TransferRecord } from '../transfers/transfer-link.ts';
import { relayHub } from '../relay/hub-stub.ts';

const PING_DEADLINE_MS = 5_000;

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
    return relayHub(this.env).listHosts(options.probe, crypto.randomUUID());
  }

  async exec(request: ExecRequest, signal: AbortSignal): Promise<Outcome<ExecOutcome>> {
    if (signal.aborted) return failure('cancelled', 'The request was cancelled before it started; nothing ran.');
    const hub = relayHub(this.env);
    const id = crypto.randomUUID();
    const onAbort = (): void => {
      void hub.cancel(id);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const reply = await hub.execCommand(id, request);
      if (!reply.ok) return reply;
      const { result, stdout, stderr, host } = reply.value;
      if (result.op !== 'exec') return failure('protocol_error', 'The relay answered a command with another kind of result.');
      return success(execOutcomeFrom(host, result, stdout, stderr, request.timeoutMs));
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  async ping(_signal: AbortSignal): Promise<Outcome<RelayPing>> {
    const hub = relayHub(this.env);
    const started = Date.now();
    const reply = await hub.execute(crypto.randomUUID(), { op: 'ping' }, PING_DEADLINE_MS);
    if (!reply.ok) return reply;
    if (reply.value.result.op !== 'ping') return failure('protocol_error', 'The relay answered a ping with something else.');
    const inventory = await hub.inventory();
    return success({ relayId: inventory?.relayId ?? 'unknown', relayVersion: reply.value.result.relayVersion, roundTripMs: Date.now() - started });
  }

  async readFile(request: ReadFileRequest, _signal: AbortSignal): Promise<Outcome<FileReadResult & { host: string }>> {
    const reply = await relayHub(this.env).readFile(crypto.randomUUID(), request);
    if (!reply.ok) return reply;
    const { result, data, host } = reply.value;
    if (result.op !== 'read_file') return failure('protocol_error', 'The relay answered a read with another kind of result.');
    return success({ host, info: result.info, dataBase64: toBase64(data ?? new Uint8Array()), offset: result.offset, eof: result.eof });
  }

  async writeFile(request: WriteFileRequest, _signal: AbortSignal): Promise<Outcome<FileWriteResult & { host: string }>> {
    const reply = await relayHub(this.env).writeFile(crypto.randomUUID(), request);
    if (!reply.ok) return reply;
    const { result, host } = reply.value;
    if (result.op !== 'write_file') return failure('protocol_error', 'The relay answered a write with another kind of result.');
    return success({ host, path: result.path, size: result.size, sha256: result.sha256, mode: result.mode, replaced: result.replaced });
  }

  async listDirectory(request: { host?: string; path: string }, _signal: AbortSignal): Promise<Outcome<DirectoryListing & { host: string }>> {
    const reply = await relayHub(this.env).listDirectory(crypto.randomUUID(), request);
    if (!reply.ok) return reply;
    const { result, host } = reply.value;
    if (result.op !== 'list_directory') return failure('protocol_error', 'The relay answered a listing with another kind of result.');
    return success({ host, path: result.path, entries: result.entries, truncated: result.truncated });
  }

  async requestUpload(request: { host?: string; path: string; permissions?: number; overwrite: boolean }, signal: AbortSignal): Promise<Outcome<LinkOffer>> {
    // Check the target now, so a refusal comes back to the assistant rather than to curl later.
    const probe = await relayHub(this.env).readFile(crypto.randomUUID(), { ...(request.host !== undefined ? { host: request.host } : {}), path: request.path, offset: 0, length: 0, maxBytes: 0 });
    let host: string;
    if (probe.ok) {
      if (!request.overwrite) return failure('already_exists', `${request.path} already exists on ${probe.value.host}.`);
      host = probe.value.host;
    } else if (probe.error.code === 'path_not_found') {
      const listed = await relayHub(this.env).inventory();
      const resolved = selectHost((listed?.hosts ?? []).map((entry) => entry.name), request.host);
      if (!resolved.ok) return resolved;
      host = resolved.value;
    } else {
      return probe;
    }
    return this.makeLink('upload', host, request.path, { ...(request.permissions !== undefined ? { permissions: request.permissions } : {}), overwrite: request.overwrite }, signal);
  }

  async requestDownload(request: { host?: string; path: string }, signal: AbortSignal): Promise<Outcome<LinkOffer>> {
    const probe = await relayHub(this.env).readFile(crypto.randomUUID(), { ...(request.host !== undefined ? { host: request.host } : {}), path: request.path, offset: 0, length: 0, maxBytes: 0 });
    if (!probe.ok) return probe;
    const { result, host } = probe.value;
    if (result.op !== 'read_file') return failure('protocol_error', 'The relay answered a check with another kind of result.');
    const limit = this.settings.tools.maxFileSize;
    if (result.info.size > limit) {
      return failure('file_too_large', `${request.path} is ${result.info.size.toLocaleString('en-US')} bytes, more than MAX_FILE_SIZE (${limit.toLocaleString('en-US')}).`);
    }
    return this.makeLink('download', host, request.path, { overwrite: false }, signal);
  }

  private async makeLink(kind: 'upload' | 'download', host: string, path: string, options: { permissions?: number; overwrite: boolean }, _signal: AbortSignal): Promise<Outcome<LinkOffer>> {
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
      host,
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
      host,
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
