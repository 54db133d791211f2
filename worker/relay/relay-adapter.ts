/**
 * The Worker's one adapter to the relay protocol: each method builds one operation
 * (shared/protocol.ts), sends it through the hub of the route's relay (which speaks only the
 * protocol), and reads its reply into what the tools return. A new operation touches the protocol,
 * this file, the relay's operation and its tool.
 *
 * Routes come from the policy gate, resolved once; nothing here selects a host. An aborted MCP
 * request sends a cancel for the request's id, which stops the remote work; the relay's answer,
 * marked cancelled, still ends the call.
 */
import { waitUntil } from 'cloudflare:workers';
import { failure, success, type Outcome } from '../../shared/errors.ts';
import { execOutcomeFrom, type ExecOutcome } from '../../shared/exec-output.ts';
import { toBase64 } from '../../shared/file-tools.ts';
import type { DirectoryListing, FileInfo, FileReadResult, FileWriteResult } from '../../shared/file-types.ts';
import { hostViews } from '../../shared/host-views.ts';
import type { ExecProgressTap } from '../../shared/latest-line.ts';
import { PROBE_TIMEOUT_MS } from '../../shared/limits.ts';
import type { Operation, OperationResult } from '../../shared/protocol.ts';
import type { JobOperationBody } from '../../shared/job-ledger.ts';
import { guestExecDeadlineMs, pveDeadlineMs } from '../../shared/proxmox.ts';
import type { ExecRequest, HostListing, PveOutcome, PveRequest, ReadFileRequest, RelayPing, WriteFileRequest } from '../../shared/tool-executor.ts';
import type { HostRoute } from './host-route.ts';
import { relayHub } from './hub-stub.ts';
import type { RelayHub, RelayState } from './relay-hub.ts';
import type { ExecuteOptions, OperationReply } from './relay-requests.ts';

/** File operations hold at most MAX_FILE_SIZE in memory; they get this long end to end. */
const FILE_DEADLINE_MS = 120_000;
/** Link transfers stream; they may take longer than in-call file work. */
const LINK_DEADLINE_MS = 30 * 60_000;
const PING_DEADLINE_MS = 5_000;
/** A job operation is short (the job itself runs detached); a cancel waits out the stop script's grace. */
const JOB_DEADLINE_MS = 30_000;

/** Where a file operation's path is: on the host, or inside one of its containers. */
export interface FileTarget {
  ctid?: string;
  path: string;
}

export interface WriteTarget extends FileTarget {
  permissions?: number;
  overwrite: boolean;
}

/** The ctid field of a file operation, present only when the path is inside a container. */
function inContainer(ctid: string | undefined): { ctid?: string } {
  return ctid !== undefined ? { ctid } : {};
}

function writeOperation(route: HostRoute, target: WriteTarget & { createDirs: boolean; maxBytes: number }, size: number): Operation {
  return {
    op: 'write_file',
    host: route.host,
    ...inContainer(target.ctid),
    path: target.path,
    size,
    ...(target.permissions !== undefined ? { permissions: target.permissions } : {}),
    overwrite: target.overwrite,
    createDirs: target.createDirs,
    maxBytes: target.maxBytes,
  };
}

function writeResult(route: HostRoute, reply: OperationReply): Outcome<FileWriteResult & { host: string }> {
  const { result } = reply;
  if (result.op !== 'write_file') return failure('protocol_error', 'The relay answered a write with another kind of result.');
  return success({ host: route.host, path: result.path, size: result.size, sha256: result.sha256, mode: result.mode, replaced: result.replaced });
}

export class RelayAdapter {
  private readonly env: Env;
  /** Whose share of each relay's in-flight slots the requests use. */
  private readonly userId: string;

  constructor(env: Env, userId: string) {
    this.env = env;
    this.userId = userId;
  }

  async exec(route: HostRoute, request: ExecRequest, signal: AbortSignal): Promise<Outcome<ExecOutcome>> {
    if (signal.aborted) return failure('cancelled', 'The request was cancelled before it started; nothing ran.');
    const operation: Operation = {
      op: 'exec',
      host: route.host,
      command: request.command,
      timeoutMs: request.timeoutMs,
      maxChars: request.maxChars,
      ...(request.guest ? { guest: request.guest } : {}),
      ...(request.pty ? { pty: request.pty } : {}),
      ...(request.sudo ? { sudo: true } : {}),
    };
    const reply = await this.cancellable(
      route.relay,
      signal,
      operation,
      guestExecDeadlineMs(request.guest?.kind, request.timeoutMs),
      { maxChars: request.maxChars, ...(request.progress ? { latestLine: true } : {}) },
      request.progress,
    );
    if (!reply.ok) return reply;
    const { result, stdout, stderr } = reply.value;
    if (result.op !== 'exec') return failure('protocol_error', 'The relay answered a command with another kind of result.');
    return success(execOutcomeFrom(route.host, result, stdout, stderr, request.timeoutMs));
  }

  async pve(route: HostRoute, request: PveRequest, signal: AbortSignal): Promise<Outcome<PveOutcome>> {
    const operation: Operation = {
      op: 'pve',
      host: route.host,
      kind: request.kind,
      action: request.action,
      ...(request.id !== undefined ? { id: request.id } : {}),
      ...(request.verbose !== undefined ? { verbose: request.verbose } : {}),
      ...(request.timeoutSeconds !== undefined ? { timeoutSeconds: request.timeoutSeconds } : {}),
    };
    const reply = await this.cancellable(route.relay, signal, operation, pveDeadlineMs(request.action, request.timeoutSeconds), {});
    if (!reply.ok) return reply;
    const { result } = reply.value;
    if (result.op !== 'pve') return failure('protocol_error', 'The relay answered a pct/qm command with another kind of result.');
    return success({ host: route.host, exitCode: result.exitCode, timedOut: result.timedOut, stdout: result.stdout, stderr: result.stderr });
  }

  async ping(relay: string): Promise<Outcome<RelayPing>> {
    const started = Date.now();
    const reply = await this.execute(relay, { op: 'ping' }, PING_DEADLINE_MS, {});
    if (!reply.ok) return reply;
    if (reply.value.result.op !== 'ping') return failure('protocol_error', 'The relay answered a ping with something else.');
    return success({ relayId: relay, relayVersion: reply.value.result.relayVersion, roundTripMs: Date.now() - started });
  }

  /** A relay's hosts as ssh_list_hosts shows them, from the state the caller already read; probed when asked and connected. */
  async listHosts(state: RelayState, probe: boolean): Promise<Outcome<HostListing>> {
    const relay = {
      id: state.relayId,
      connected: state.connected,
      version: state.version,
      ...(state.connected ? { connectedSince: state.connectedAt } : {}),
    };
    const offline = state.connected ? undefined : 'The relay is not connected, so this host cannot be reached now.';
    if (!state.connected || !probe || state.hosts.length === 0)
      return success({ relays: [relay], hosts: hostViews(state.relayId, state.hosts, null, offline) });
    const probed = await this.execute(state.relayId, { op: 'probe', hosts: [], timeoutMs: PROBE_TIMEOUT_MS }, PROBE_TIMEOUT_MS, {});
    const statuses = probed.ok
      ? probed.value.result.op === 'probe'
        ? success(probed.value.result.hosts)
        : failure('protocol_error', 'The relay answered a probe with something else.')
      : probed;
    // A relay whose probe fails still shows its hosts, with why.
    if (!statuses.ok) {
      return success({
        relays: [relay],
        hosts: hostViews(state.relayId, state.hosts, null, `Checking the hosts failed: [${statuses.error.code}] ${statuses.error.message}`),
      });
    }
    return success({ relays: [relay], hosts: hostViews(state.relayId, state.hosts, statuses.value) });
  }

  /** Read (part of) a file; the bytes come back in the reply. */
  async readFile(route: HostRoute, request: ReadFileRequest): Promise<Outcome<FileReadResult & { host: string }>> {
    const reply = await this.execute(
      route.relay,
      {
        op: 'read_file',
        host: route.host,
        ...inContainer(request.ctid),
        path: request.path,
        offset: request.offset,
        length: request.length,
        maxBytes: request.maxBytes,
      },
      FILE_DEADLINE_MS,
      { receiveBytes: request.maxBytes },
    );
    if (!reply.ok) return reply;
    const { result, data } = reply.value;
    if (result.op !== 'read_file') return failure('protocol_error', 'The relay answered a read with another kind of result.');
    return success({ host: route.host, info: result.info, dataBase64: toBase64(data ?? new Uint8Array()), offset: result.offset, eof: result.eof });
  }

  /** What is at a path (a read of zero bytes): path_not_found when nothing is. */
  async stat(route: HostRoute, target: FileTarget): Promise<Outcome<FileInfo>> {
    const read = await this.readFile(route, { ...target, offset: 0, length: 0, maxBytes: 0 });
    return read.ok ? success(read.value.info) : read;
  }

  /** Write a file atomically; the content streams to the relay as it grants credit. */
  async writeFile(route: HostRoute, request: WriteFileRequest): Promise<Outcome<FileWriteResult & { host: string }>> {
    const reply = await this.execute(route.relay, writeOperation(route, request, request.content.length), FILE_DEADLINE_MS, { sendBytes: request.content });
    return reply.ok ? writeResult(route, reply.value) : reply;
  }

  async listDirectory(route: HostRoute, request: { path: string }): Promise<Outcome<DirectoryListing & { host: string }>> {
    const reply = await this.execute(route.relay, { op: 'list_directory', host: route.host, path: request.path }, FILE_DEADLINE_MS, {});
    if (!reply.ok) return reply;
    const { result } = reply.value;
    if (result.op !== 'list_directory') return failure('protocol_error', 'The relay answered a listing with another kind of result.');
    return success({ host: route.host, path: result.path, entries: result.entries, truncated: result.truncated });
  }

  /**
   * Write a file from an HTTP body (a transfer link's PUT, an ImageKit upload), streamed to the
   * relay within its credit: memory stays at one window whatever the size.
   */
  async writeFromBody(
    route: HostRoute,
    target: WriteTarget & { maxBytes: number },
    body: ReadableStream<Uint8Array>,
    size: number,
  ): Promise<Outcome<FileWriteResult & { host: string }>> {
    const reply = await this.execute(route.relay, writeOperation(route, { ...target, createDirs: false }, size), LINK_DEADLINE_MS, {
      sendBody: { body, size },
    });
    return reply.ok ? writeResult(route, reply.value) : reply;
  }

  /**
   * A whole file as a stream (a transfer link's GET), once the relay has sent the first bytes or
   * finished, so an error such as a missing file is an outcome. The stream breaks (never closes
   * cleanly) if the file changed or grew past `maxBytes` while it was read: a partial file never
   * looks like a whole one.
   */
  async readAsStream(route: HostRoute, target: FileTarget & { maxBytes: number }): Promise<Outcome<ReadableStream<Uint8Array>>> {
    const hub = relayHub(this.env, route.relay);
    const id = crypto.randomUUID();
    // One byte over the limit is asked for, so that a file that grew is noticed, not cut.
    const asked = target.maxBytes + 1;
    const opened = await hub.executeToStream(
      id,
      { op: 'read_file', host: route.host, ...inContainer(target.ctid), path: target.path, offset: 0, length: asked, maxBytes: asked },
      LINK_DEADLINE_MS,
      { userId: this.userId, limit: asked },
    );
    if (!opened.ok) return opened;
    let received = 0;
    const checked = new TransformStream<Uint8Array, Uint8Array>({
      transform: (chunk, controller) => {
        received += chunk.byteLength;
        if (received > target.maxBytes) throw new Error('The file grew past MAX_FILE_SIZE while it was read.');
        controller.enqueue(chunk);
      },
      flush: async () => {
        const ended = await hub.streamResult(id);
        if (!ended.ok) throw new Error(ended.error.message);
        const result = ended.value.result;
        if (result.op !== 'read_file' || !result.eof || result.bytes !== received || result.bytes !== result.info.size) {
          throw new Error('The file changed or grew past MAX_FILE_SIZE while it was read.');
        }
      },
    });
    return success(opened.value.stream.pipeThrough(checked));
  }

  /** One job operation (shared/job-ledger.ts) on the route's host; the reply's result, as the relay sent it. */
  async job(route: HostRoute, body: JobOperationBody, signal: AbortSignal): Promise<Outcome<OperationResult>> {
    if (signal.aborted) return failure('cancelled', 'The request was cancelled before it was sent.');
    const reply = await this.execute(route.relay, { ...body, host: route.host }, JOB_DEADLINE_MS, {});
    return reply.ok ? success(reply.value.result) : reply;
  }

  /** One request on the route's relay hub, in this user's share. */
  private execute(relay: string, operation: Operation, deadlineMs: number, options: ExecuteOptions): Promise<Outcome<OperationReply>> {
    return relayHub(this.env, relay).execute(crypto.randomUUID(), operation, deadlineMs, { ...options, userId: this.userId });
  }

  /**
   * One request under a fresh id; an aborted MCP request (notifications/cancelled) sends a cancel
   * for that id, which stops the remote work, and the relay's answer still ends the call. With a
   * progress tap (the client sent a progress token), the reporter reads the latest output line
   * from the hub by that id, one call per notification; without one, nothing more is asked of it.
   */
  private async cancellable(
    relay: string,
    signal: AbortSignal,
    operation: Operation,
    deadlineMs: number,
    options: ExecuteOptions,
    progress?: ExecProgressTap,
  ): Promise<Outcome<OperationReply>> {
    const hub: DurableObjectStub<RelayHub> = relayHub(this.env, relay);
    const id = crypto.randomUUID();
    const userId = this.userId;
    progress?.attach(() => hub.latestLine(id, userId));
    const onAbort = (): void => {
      // Under waitUntil: a client that drops its request ends the invocation at once, and the
      // cancel frame must still reach the relay.
      waitUntil(hub.cancel(id).catch(() => undefined));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await hub.execute(id, operation, deadlineMs, { ...options, userId: this.userId });
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }
}
