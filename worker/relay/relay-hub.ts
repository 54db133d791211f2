/**
 * The relay hub: a Durable Object holding the relay's WebSocket (hibernation API), its host
 * inventory, and the requests in flight. Session Durable Objects reach it over RPC; it turns
 * each call into one request frame and resolves it when the matching result or error frame
 * arrives. At most once: if the socket closes, every pending request fails at once with
 * `relay_disconnected`, and nothing is re-sent when the relay comes back.
 *
 * There is one hub per relay. The WebSocket arrives here already authenticated: the /relay route
 * (worker/relay/relay-route.ts) checks the credential before the upgrade and names the relay.
 */
import { DurableObject } from 'cloudflare:workers';
import { failure, success, type Outcome, type ToolError } from '../../shared/errors.ts';
import { PROBE_TIMEOUT_MS, RELAY_REPLY_GRACE_MS } from '../../shared/limits.ts';
import { boundText } from '../../shared/bounded-text.ts';
import {
  HEARTBEAT_SILENCE_INTERVALS,
  heartbeatIntervalMs,
  MAX_OUTPUT_CHUNK_CHARS,
  PING_FRAME,
  PINGS_PER_INTERVAL,
  PONG_FRAME,
  PROTOCOL_VERSION,
  parseRelayFrame,
  requestIdOf,
  type HelloFrame,
  type HostInventoryEntry,
  type HubFrame,
  type Operation,
  type OperationResult,
} from '../../shared/protocol.ts';
import type { RelayInventory } from '../team/fleet.ts';
import { selectHost } from '../../shared/host-selection.ts';
import { hostViews } from '../../shared/host-views.ts';
import { decodeChunk, STREAM_WINDOW_BYTES } from '../../shared/binary-frames.ts';
import { ByteSender, concatBytes, sendStream } from '../../shared/byte-streams.ts';
import type { ExecRequest, HostListing, PveRequest, ReadFileRequest, WriteFileRequest } from '../../shared/tool-executor.ts';
import { guestExecDeadlineMs, pveDeadlineMs } from '../../shared/proxmox.ts';
import { logEvent } from '../log.ts';
import { AUTHENTICATED_RELAY_HEADER } from './hub-stub.ts';
import { teamDirectory } from '../team/team-directory.ts';

/** What the hub remembers about its relay across restarts (Durable Object storage key `relay`). */
interface RelayRecord {
  relayId: string;
  version: string;
  hosts: HostInventoryEntry[];
  connectedAt: string;
  disconnectedAt?: string;
}

/** What the hub tells about its relay: the inventory it last reported and whether it is connected now. */
export interface RelayState extends RelayInventory {
  version: string;
  connectedAt: string;
  disconnectedAt?: string;
}

/** Per-socket state that survives hibernation (serializeAttachment, ≤ 16 KiB). */
interface SocketAttachment {
  welcomed: boolean;
  /** The name the /relay route admitted this connection under. */
  relayId?: string;
  acceptedAt?: number;
  welcomedAt?: number;
  /** Set when its hello arrives, before the checks await anything: a second hello is refused even mid-check. */
  saidHello?: boolean;
  /** Invalid frames this connection sent; at MAX_INVALID_FRAMES it is closed (1002). */
  invalidFrames?: number;
}

export interface OperationReply {
  result: OperationResult;
  stdout: string;
  stderr: string;
  /** The file bytes the relay streamed back (read_file). */
  data?: Uint8Array;
}

/** Bytes arriving from the relay for one request, kept up to a limit. */
interface IncomingBytes {
  chunks: Uint8Array[];
  bytes: number;
  nextSequence: number;
  limit: number;
}

/** Bytes from the relay passed on to a ReadableStream, with credit granted as it is read. */
interface StreamSink {
  controller: ReadableStreamDefaultController<Uint8Array>;
  nextSequence: number;
  bytes: number;
  limit: number;
  /** Credit owed to the relay, granted when the reader wants more. */
  owed: number;
  onFirstBytes(): void;
}

interface Pending {
  operation: Operation;
  socket: WebSocket;
  /** Whose request it is: each user may hold at most a share of the relay's in-flight slots. */
  userId: string;
  sink?: StreamSink;
  stdout: string;
  stderr: string;
  maxChars: number;
  timer: ReturnType<typeof setTimeout>;
  incoming?: IncomingBytes;
  sender?: ByteSender;
  /** Stops an outgoing byte stream when the request ends. */
  streamAbort: AbortController;
  resolve(outcome: Outcome<OperationReply>): void;
}

export interface ExecuteOptions {
  /** The user the request is for (their share of the in-flight slots); UNATTRIBUTED when none is given. */
  userId?: string;
  maxChars?: number;
  /** Pass the relay's bytes on through this sink instead of collecting them. */
  sink?: StreamSink;
  /** Stream this body (exactly `size` bytes) to the relay. */
  sendBody?: { body: ReadableStream<Uint8Array>; size: number };
  /** Accept up to this many bytes streamed back by the relay. */
  receiveBytes?: number;
  /** Stream these bytes to the relay once it grants credit. */
  sendBytes?: Uint8Array;
}

/** The write_file request for `size` bytes to `path` on `host`. */
function writeOperation(
  host: string,
  request: { ctid?: string; path: string; permissions?: number; overwrite: boolean; createDirs: boolean; maxBytes: number },
  size: number,
): Operation {
  return {
    op: 'write_file',
    host,
    ...inContainer(request.ctid),
    path: request.path,
    size,
    ...(request.permissions !== undefined ? { permissions: request.permissions } : {}),
    overwrite: request.overwrite,
    createDirs: request.createDirs,
    maxBytes: request.maxBytes,
  };
}

/** The ctid field of a file operation, present only when the path is inside a container. */
function inContainer(ctid: string | undefined): { ctid?: string } {
  return ctid !== undefined ? { ctid } : {};
}

const RELAY_TAG = 'relay';
/** A connection must say hello this soon after the upgrade, or it is dropped by the next one. */
const HELLO_TIMEOUT_MS = 10_000;
/** Allowance for the relay's answer to reach the hub after the relay's own deadline. */
const REPLY_TRANSIT_MS = 1_000;
const RELAY_RECORD_KEY = 'relay';
/** Requests in flight per relay; beyond this, calls are refused rather than queued without bound. */
const MAX_PENDING = 256;
/**
 * What one user may hold of MAX_PENDING: a quarter, so one person (or one runaway assistant)
 * cannot take the relay away from everyone else; at least 16, so real parallel work still fits.
 */
export const USER_PENDING_SHARE = Math.max(16, Math.floor(MAX_PENDING / 4));
/** The bucket of requests no user is named for (relay probes, internal checks). */
export const UNATTRIBUTED = '(unattributed)';
/** A connection that sends this many invalid frames is closed with 1002 (protocol error). */
export const MAX_INVALID_FRAMES = 5;
/** Frames for requests not in flight are logged, at most this many per minute, so a flood cannot flood the log. */
const STRAY_LOGS_PER_MINUTE = 10;
const EARLY_CANCEL_MEMORY_MS = 60_000;
/** File operations hold at most MAX_FILE_SIZE in memory; they get this long end to end. */
const FILE_DEADLINE_MS = 120_000;
/** Link transfers stream; they may take longer than in-call file work. */
const LINK_DEADLINE_MS = 30 * 60_000;

function attachment(socket: WebSocket): SocketAttachment {
  const value: unknown = socket.deserializeAttachment();
  if (typeof value === 'object' && value !== null && 'welcomed' in value) return value as SocketAttachment;
  return { welcomed: false };
}

function send(socket: WebSocket, frame: HubFrame): void {
  socket.send(JSON.stringify(frame));
}

export class RelayHub extends DurableObject<Env> {
  private readonly pending = new Map<string, Pending>();
  private readonly cancelledEarly = new Set<string>();
  /** The heartbeat interval shared with the relay (RELAY_HEARTBEAT_MS shortens it for tests). */
  private readonly heartbeatMs: number;
  private readonly strayLog = { windowStart: 0, logged: 0, skipped: 0 };

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.heartbeatMs = heartbeatIntervalMs(env.RELAY_HEARTBEAT_MS);
    // Heartbeats are answered by the runtime without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
  }

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
      return new Response('Expected a WebSocket upgrade.', { status: 426 });
    }
    const relayId = request.headers.get(AUTHENTICATED_RELAY_HEADER);
    if (!relayId) return new Response('The relay was not authenticated.', { status: 401 });
    // No silent takeover: while this relay's connection is alive, a second one presenting the same
    // identity is refused (a copied credential, or the same relay started twice). A connection
    // that stopped sending heartbeats is retired first, so a relay that restarts gets back in.
    // A connection that never said hello holds nothing and must not linger (it could say hello
    // later, after the real relay, and be taken for the newer one).
    for (const other of this.ctx.getWebSockets(RELAY_TAG)) {
      const state = attachment(other);
      if (!state.welcomed && Date.now() - (state.acceptedAt ?? 0) > HELLO_TIMEOUT_MS)
        this.retire(other, 4008, 'no hello in time', 'The relay connection was dropped.');
    }
    const live = this.liveSocket();
    if (live.ok) {
      const since = attachment(live.value).welcomedAt;
      logEvent('warn', 'refused a second connection for a relay that is already connected', { relayId });
      return new Response(
        `Relay "${relayId}" is already connected${since ? ` (since ${new Date(since).toISOString()})` : ''}. A second connection with the same identity does not take over: stop the other relay, or have an admin revoke this credential if it was copied.`,
        { status: 409 },
      );
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, [RELAY_TAG]);
    server.serializeAttachment({ welcomed: false, relayId, acceptedAt: Date.now() } satisfies SocketAttachment);
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Close this relay's connection (its credential was revoked); requests in flight fail at once. */
  async disconnect(reason: string): Promise<void> {
    for (const socket of this.ctx.getWebSockets(RELAY_TAG)) {
      this.retire(socket, 4010, reason.slice(0, 120), `The relay was disconnected (${reason}); the outcome of this request is unknown.`);
    }
  }

  override async webSocketMessage(socket: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (typeof message !== 'string') {
      this.onChunk(socket, new Uint8Array(message));
      return;
    }
    const parsed = parseRelayFrame(message);
    if (!parsed.ok) {
      // The request it answers (if its id can still be read) fails now, not at its deadline.
      const id = requestIdOf(message);
      const request = id !== null ? this.take(id, socket) : undefined;
      if (request) {
        request.resolve(
          failure('protocol_error', `The relay's answer was not a valid frame (${boundText(parsed.reason, 300)}); the request may have run on the host.`),
        );
        // Not counted towards closing the connection: it answered a real request (an older relay
        // that does not bound its messages), and what one user sends must never get the relay
        // dropped for everyone.
        logEvent('warn', "rejected the relay's answer to a request as an invalid frame", {
          relayId: attachment(socket).relayId,
          id,
          reason: boundText(parsed.reason, 1000),
        });
        this.trySend(socket, { type: 'error', code: 'protocol_error', message: boundText(`Invalid frame for request ${id}: ${parsed.reason}`) });
        return;
      }
      this.onInvalidFrame(socket, parsed.reason, id);
      return;
    }
    const frame = parsed.frame;
    if (frame.type !== 'hello' && frame.type !== 'ping' && !attachment(socket).welcomed) {
      send(socket, { type: 'error', code: 'protocol_error', message: 'Say hello first.' });
      socket.close(4003, 'hello expected');
      return;
    }
    switch (frame.type) {
      case 'hello': {
        const state = attachment(socket);
        if (state.welcomed || state.saidHello) {
          // The inventory and "connected since" were recorded at the first hello; a second one changes nothing.
          this.onInvalidFrame(socket, 'a second hello on a connection that already said hello', null);
          return;
        }
        socket.serializeAttachment({ ...state, saidHello: true } satisfies SocketAttachment);
        await this.onHello(socket, frame);
        return;
      }
      case 'ping':
        socket.send(PONG_FRAME);
        return;
      case 'output': {
        const request = this.pending.get(frame.id);
        if (!request || request.socket !== socket) {
          this.onStrayFrame(socket, frame.type, frame.id);
          return;
        }
        // The relay already keeps at most maxChars per stream; enforce it here too rather than trust it.
        const room = request.maxChars - request[frame.stream].length;
        if (room > 0) request[frame.stream] += frame.data.slice(0, Math.min(room, MAX_OUTPUT_CHUNK_CHARS));
        return;
      }
      case 'result': {
        const request = this.take(frame.id, socket);
        if (!request) {
          this.onStrayFrame(socket, frame.type, frame.id);
          return;
        }
        if (frame.result.op !== request.operation.op) {
          request.resolve(failure('protocol_error', `The relay answered a ${request.operation.op} request with a ${frame.result.op} result.`));
          return;
        }
        const data = request.incoming ? concatBytes(request.incoming.chunks, request.incoming.bytes) : undefined;
        request.resolve(success({ result: frame.result, stdout: request.stdout, stderr: request.stderr, ...(data ? { data } : {}) }));
        return;
      }
      case 'credit': {
        const request = this.pending.get(frame.id);
        if (!request || request.socket !== socket) {
          this.onStrayFrame(socket, frame.type, frame.id);
          return;
        }
        request.sender?.grant(frame.bytes);
        return;
      }
      case 'error': {
        if (frame.id === undefined) {
          logEvent('warn', 'relay reported an error', { relayId: attachment(socket).relayId, code: frame.code, message: frame.message });
          return;
        }
        const request = this.take(frame.id, socket);
        if (!request) {
          this.onStrayFrame(socket, frame.type, frame.id);
          return;
        }
        request.resolve(failure(frame.code, frame.message));
        return;
      }
      default: {
        const unhandled: never = frame;
        logEvent('error', 'unhandled relay frame', { frame: unhandled });
      }
    }
  }

  override async webSocketClose(socket: WebSocket, code: number, reason: string): Promise<void> {
    await this.onSocketGone(socket, `closed (${code}${reason ? `: ${reason}` : ''})`);
    try {
      socket.close(code === 1005 || code === 1006 ? 1000 : code, 'closing');
    } catch {
      // Already closed.
    }
  }

  override async webSocketError(socket: WebSocket, error: unknown): Promise<void> {
    await this.onSocketGone(socket, `error: ${error instanceof Error ? error.message : String(error)}`);
  }

  /** Run one operation on the relay. Never throws; failures keep their error code. */
  async execute(id: string, operation: Operation, deadlineMs: number, options: ExecuteOptions = {}): Promise<Outcome<OperationReply>> {
    if (this.cancelledEarly.delete(id)) return failure('cancelled', 'The request was cancelled before it reached the relay; nothing ran.');
    const socket = this.liveSocket();
    if (!socket.ok) return socket;
    if (this.pending.has(id)) return failure('internal', `Request id ${id} is already in flight.`);
    const userId = options.userId ?? UNATTRIBUTED;
    const busy = this.busyRefusal(userId, attachment(socket.value).relayId ?? 'this relay');
    if (busy) return busy;
    // The relay gets the whole budget (its own timeout handling must finish inside it); the hub
    // waits a little longer for the answer to travel back.
    const relayDeadlineMs = deadlineMs + RELAY_REPLY_GRACE_MS;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const expired = this.pending.get(id);
        if (!expired) return;
        this.pending.delete(id);
        expired.streamAbort.abort();
        this.trySend(socket.value, { type: 'cancel', id });
        resolve(failure('relay_timeout', `The relay did not answer within ${Math.round(relayDeadlineMs / 1000)} s.`));
      }, relayDeadlineMs + REPLY_TRANSIT_MS);
      const relaySocket = socket.value;
      const pending: Pending = {
        operation,
        socket: relaySocket,
        userId,
        stdout: '',
        stderr: '',
        maxChars: options.maxChars ?? 0,
        timer,
        streamAbort: new AbortController(),
        resolve,
        ...(options.receiveBytes !== undefined ? { incoming: { chunks: [], bytes: 0, nextSequence: 0, limit: options.receiveBytes } } : {}),
        ...(options.sink ? { sink: options.sink } : {}),
        ...(options.sendBytes || options.sendBody
          ? {
              sender: new ByteSender(id, (frame) => {
                try {
                  relaySocket.send(frame);
                  return true;
                } catch {
                  return false;
                }
              }),
            }
          : {}),
      };
      this.pending.set(id, pending);
      void this.watchHeartbeats().catch((error: unknown) => logEvent('warn', 'could not schedule the heartbeat check', { error: String(error) }));
      // The caller's id lets the relay share each host's SSH channels fairly between users.
      if (!this.trySend(relaySocket, { type: 'request', id, deadlineMs: relayDeadlineMs, operation, ...(userId !== UNATTRIBUTED ? { caller: userId } : {}) })) {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(failure('relay_disconnected', 'The relay connection failed while sending the request; it was not delivered.'));
        return;
      }
      if (pending.incoming || pending.sink) this.trySend(relaySocket, { type: 'credit', id, bytes: STREAM_WINDOW_BYTES });
      if (pending.sender && options.sendBytes) void pending.sender.send(options.sendBytes, pending.streamAbort.signal);
      if (pending.sender && options.sendBody) {
        const { body, size } = options.sendBody;
        void sendStream(pending.sender, body, size, pending.streamAbort.signal).then((sent) => {
          if (sent === 'ok' || sent === 'aborted') return;
          const why =
            sent === 'short'
              ? `The upload ended before the ${size.toLocaleString('en-US')} bytes its Content-Length announced`
              : sent === 'long'
                ? `The upload sent more than the ${size.toLocaleString('en-US')} bytes its Content-Length announced`
                : 'Reading the upload failed';
          this.take(id, relaySocket)?.resolve(failure('invalid_argument', `${why}; nothing was written and the target is unchanged.`));
          this.trySend(relaySocket, { type: 'cancel', id });
        });
      }
    });
  }

  /**
   * The refusal when the relay's in-flight slots are full, or when this user already holds their
   * share of them (so one user's burst never makes everyone else wait); null when there is room.
   */
  private busyRefusal(userId: string, relayId: string): { ok: false; error: ToolError } | null {
    let mine = 0;
    for (const request of this.pending.values()) if (request.userId === userId) mine += 1;
    if (mine >= USER_PENDING_SHARE) {
      return failure(
        'relay_busy',
        `You already have ${mine} requests in flight on relay "${relayId}", your share of its ${MAX_PENDING} slots; wait for some to finish and try again. Other users are unaffected.`,
      );
    }
    if (this.pending.size >= MAX_PENDING) {
      return failure('relay_busy', `All ${MAX_PENDING} request slots of relay "${relayId}" are in use (${mine} of them yours); try again shortly.`);
    }
    return null;
  }

  /**
   * Run a command on the host the caller named (or the only host), resolved against the relay's
   * inventory here, so a tool call costs one RPC. `userId` is whose share of the in-flight slots it uses.
   */
  async execCommand(id: string, request: ExecRequest, userId: string = UNATTRIBUTED): Promise<Outcome<OperationReply & { host: string }>> {
    return this.onHost(request.host, (host) =>
      this.execute(
        id,
        {
          op: 'exec',
          host,
          command: request.command,
          timeoutMs: request.timeoutMs,
          maxChars: request.maxChars,
          ...(request.guest ? { guest: request.guest } : {}),
        },
        guestExecDeadlineMs(request.guest?.kind, request.timeoutMs),
        { maxChars: request.maxChars, userId },
      ),
    );
  }

  /** A fixed pct/qm command on a Proxmox host. */
  async pve(id: string, request: PveRequest, userId: string = UNATTRIBUTED): Promise<Outcome<OperationReply & { host: string }>> {
    return this.onHost(request.host, (host) =>
      this.execute(
        id,
        {
          op: 'pve',
          host,
          kind: request.kind,
          action: request.action,
          ...(request.id !== undefined ? { id: request.id } : {}),
          ...(request.verbose !== undefined ? { verbose: request.verbose } : {}),
          ...(request.timeoutSeconds !== undefined ? { timeoutSeconds: request.timeoutSeconds } : {}),
        },
        pveDeadlineMs(request.action, request.timeoutSeconds),
        { userId },
      ),
    );
  }

  /** Read (part of) a file on a host; the bytes come back in the reply. */
  async readFile(id: string, request: ReadFileRequest, userId: string = UNATTRIBUTED): Promise<Outcome<OperationReply & { host: string }>> {
    return this.onHost(request.host, (host) =>
      this.execute(
        id,
        { op: 'read_file', host, ...inContainer(request.ctid), path: request.path, offset: request.offset, length: request.length, maxBytes: request.maxBytes },
        FILE_DEADLINE_MS,
        {
          receiveBytes: request.maxBytes,
          userId,
        },
      ),
    );
  }

  /** Write a file on a host atomically; the content streams to the relay as it grants credit. */
  async writeFile(id: string, request: WriteFileRequest, userId: string = UNATTRIBUTED): Promise<Outcome<OperationReply & { host: string }>> {
    return this.onHost(request.host, (host) =>
      this.execute(id, writeOperation(host, request, request.content.length), FILE_DEADLINE_MS, { sendBytes: request.content, userId }),
    );
  }

  async listDirectory(
    id: string,
    request: { host?: string; path: string },
    userId: string = UNATTRIBUTED,
  ): Promise<Outcome<OperationReply & { host: string }>> {
    return this.onHost(request.host, (host) => this.execute(id, { op: 'list_directory', host, path: request.path }, FILE_DEADLINE_MS, { userId }));
  }

  /**
   * Write a file from an HTTP body (a transfer link's PUT), streamed to the relay within its
   * credit: memory stays at one window whatever the size.
   */
  async writeFromBody(
    id: string,
    request: { host: string; ctid?: string; path: string; permissions?: number; overwrite: boolean; maxBytes: number },
    body: ReadableStream<Uint8Array>,
    size: number,
    userId: string = UNATTRIBUTED,
  ): Promise<Outcome<OperationReply & { host: string }>> {
    return this.onHost(request.host, (host) =>
      this.execute(id, writeOperation(host, { ...request, createDirs: false }, size), LINK_DEADLINE_MS, { sendBody: { body, size }, userId }),
    );
  }

  /**
   * Read a whole file as a stream (a transfer link's GET). Resolves once the relay has sent the
   * first bytes or finished, so an error such as a missing file becomes a proper HTTP status.
   */
  async readAsStream(
    id: string,
    request: { host: string; ctid?: string; path: string; maxBytes: number },
    userId: string = UNATTRIBUTED,
  ): Promise<Outcome<{ stream: ReadableStream<Uint8Array> }>> {
    let firstBytes: () => void = () => undefined;
    const started = new Promise<void>((resolve) => {
      firstBytes = resolve;
    });
    let sink: StreamSink | undefined;
    const stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          // One byte over the limit is accepted so that a file that grew is noticed, not cut.
          sink = { controller, nextSequence: 0, bytes: 0, limit: request.maxBytes + 1, owed: 0, onFirstBytes: () => firstBytes() };
        },
        pull: () => {
          const pending = this.pending.get(id);
          if (pending?.sink && pending.sink.owed > 0) {
            this.trySend(pending.socket, { type: 'credit', id, bytes: pending.sink.owed });
            pending.sink.owed = 0;
          }
        },
        cancel: () => {
          const pending = this.pending.get(id);
          if (pending) {
            this.trySend(pending.socket, { type: 'cancel', id });
            this.take(id, pending.socket)?.resolve(failure('cancelled', 'The download was abandoned by the client.'));
          }
        },
      },
      { highWaterMark: STREAM_WINDOW_BYTES, size: (chunk) => chunk.byteLength },
    );
    if (!sink) return failure('internal', 'Could not set up the download stream.');
    const streamSink = sink;
    const done = this.onHost(request.host, (host) =>
      this.execute(
        id,
        { op: 'read_file', host, ...inContainer(request.ctid), path: request.path, offset: 0, length: request.maxBytes + 1, maxBytes: request.maxBytes + 1 },
        LINK_DEADLINE_MS,
        { sink: streamSink, userId },
      ),
    );
    void done.then((outcome) => {
      if (!outcome.ok) {
        streamSink.controller.error(new Error(outcome.error.message));
        return;
      }
      const result = outcome.value.result;
      // Never let a partial file look like a whole one: the client sees a broken download.
      if (result.op !== 'read_file' || !result.eof || result.bytes > request.maxBytes || result.bytes !== result.info.size) {
        streamSink.controller.error(new Error('The file changed or grew past MAX_FILE_SIZE while it was read.'));
        return;
      }
      streamSink.controller.close();
    });
    const first = await Promise.race([started.then(() => null), done]);
    if (first && !first.ok) return first;
    return success({ stream });
  }

  private async onHost(
    requested: string | undefined,
    run: (host: string) => Promise<Outcome<OperationReply>>,
  ): Promise<Outcome<OperationReply & { host: string }>> {
    const record = await this.ctx.storage.get<RelayRecord>(RELAY_RECORD_KEY);
    if (!record) return failure('relay_not_connected', 'No relay has connected to this server yet.');
    const host = selectHost(
      record.hosts.map((entry) => entry.name),
      requested,
    );
    if (!host.ok) return host;
    const reply = await run(host.value);
    return reply.ok ? success({ ...reply.value, host: host.value }) : reply;
  }

  /** Ask the relay to stop a request; its answer (marked cancelled) still resolves the call. */
  async cancel(id: string): Promise<void> {
    const request = this.pending.get(id);
    if (request) {
      this.trySend(request.socket, { type: 'cancel', id });
      return;
    }
    // The cancel overtook its request (it was still being prepared): remember it briefly.
    this.cancelledEarly.add(id);
    setTimeout(() => this.cancelledEarly.delete(id), EARLY_CANCEL_MEMORY_MS);
  }

  /**
   * While requests are in flight, check as often as the relay pings that it is still there: the
   * runtime's auto-response timestamp (when it last answered a ping) is all the hub can observe of
   * a hibernation-friendly socket, and a half-open one must be found within two intervals.
   */
  override async alarm(): Promise<void> {
    if (this.pending.size === 0) return;
    this.liveSocket();
    if (this.pending.size > 0) await this.ctx.storage.setAlarm(Date.now() + this.checkEveryMs());
  }

  private async watchHeartbeats(): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + this.checkEveryMs());
  }

  private checkEveryMs(): number {
    return Math.max(1, Math.floor(this.heartbeatMs / PINGS_PER_INTERVAL));
  }

  /** `userId`: whose share of the in-flight slots a probe uses (a probe waits on every host, up to PROBE_TIMEOUT_MS). */
  async listHosts(probe: boolean, id: string, userId: string = UNATTRIBUTED): Promise<Outcome<HostListing>> {
    const record = await this.ctx.storage.get<RelayRecord>(RELAY_RECORD_KEY);
    if (!record) return success({ relays: [], hosts: [] });
    const live = this.liveSocket();
    const relay = {
      id: record.relayId,
      connected: live.ok,
      version: record.version,
      ...(live.ok ? { connectedSince: record.connectedAt } : {}),
    };
    const offline = live.ok ? undefined : 'The relay is not connected, so this host cannot be reached now.';
    if (!live.ok || !probe || record.hosts.length === 0) return success({ relays: [relay], hosts: hostViews(record.relayId, record.hosts, null, offline) });
    const probed = await this.execute(id, { op: 'probe', hosts: [], timeoutMs: PROBE_TIMEOUT_MS }, PROBE_TIMEOUT_MS, { userId });
    if (!probed.ok) return probed;
    if (probed.value.result.op !== 'probe') return failure('protocol_error', 'The relay answered a probe with something else.');
    return success({ relays: [relay], hosts: hostViews(record.relayId, record.hosts, probed.value.result.hosts) });
  }

  /** The inventory the relay last reported, with its state, or null before it ever connected. */
  async inventory(): Promise<RelayState | null> {
    const record = await this.ctx.storage.get<RelayRecord>(RELAY_RECORD_KEY);
    if (!record) return null;
    return {
      relayId: record.relayId,
      connected: this.liveSocket().ok,
      version: record.version,
      connectedAt: record.connectedAt,
      ...(record.disconnectedAt ? { disconnectedAt: record.disconnectedAt } : {}),
      hosts: record.hosts,
    };
  }

  private async onHello(socket: WebSocket, hello: HelloFrame): Promise<void> {
    if (hello.protocol !== PROTOCOL_VERSION) {
      logEvent('warn', 'relay speaks another protocol version', { relay: hello.protocol, hub: PROTOCOL_VERSION, relayVersion: hello.version });
      send(socket, {
        type: 'error',
        code: 'version_mismatch',
        message: `This server speaks relay protocol ${PROTOCOL_VERSION}; the relay (version ${hello.version}) speaks ${hello.protocol}. Upgrade the older side.`,
      });
      socket.close(4000, 'protocol version mismatch');
      return;
    }
    const authenticated = attachment(socket).relayId;
    if (hello.relayId !== authenticated) {
      send(socket, {
        type: 'error',
        code: 'protocol_error',
        message: `This connection was admitted as relay "${authenticated}" but its hello says "${hello.relayId}". Set RELAY_ID=${authenticated ?? ''} (or relay_id in the relay config).`,
      });
      socket.close(4004, 'relay id does not match its credential');
      return;
    }
    // Revoked between the credential check and this hello? Then it does not get in.
    const current = await teamDirectory(this.env).relayNames();
    if (!current.some((name) => name.toLowerCase() === hello.relayId.toLowerCase())) {
      send(socket, { type: 'error', code: 'access_denied', message: `The credential of relay "${hello.relayId}" was revoked.` });
      socket.close(4010, 'relay credential revoked');
      return;
    }
    // No silent takeover, here too: two connections may both have passed fetch() before either said hello.
    const other = this.liveSocket();
    if (other.ok && other.value !== socket) {
      logEvent('warn', 'refused a second hello for a relay that is already connected', { relayId: hello.relayId });
      send(socket, {
        type: 'error',
        code: 'protocol_error',
        message: `Relay "${hello.relayId}" is already connected. A second connection with the same identity does not take over.`,
      });
      socket.close(4009, 'relay already connected');
      return;
    }
    const duplicate = hello.hosts.find((host, index) => hello.hosts.findIndex((entry) => entry.name === host.name) !== index);
    if (duplicate) {
      send(socket, { type: 'error', code: 'protocol_error', message: `The relay reported host "${duplicate.name}" twice.` });
      socket.close(4004, 'duplicate host name');
      return;
    }
    const record: RelayRecord = { relayId: hello.relayId, version: hello.version, hosts: hello.hosts, connectedAt: new Date().toISOString() };
    await this.ctx.storage.put(RELAY_RECORD_KEY, record);
    await teamDirectory(this.env).noteRelayConnected(hello.relayId);
    socket.serializeAttachment({ ...attachment(socket), welcomed: true, relayId: hello.relayId, welcomedAt: Date.now() } satisfies SocketAttachment);
    send(socket, { type: 'welcome', protocol: PROTOCOL_VERSION, maxOutputChunkChars: MAX_OUTPUT_CHUNK_CHARS });
    logEvent('info', 'relay connected', { relayId: hello.relayId, version: hello.version, hosts: hello.hosts.length });
  }

  private async onSocketGone(socket: WebSocket, why: string): Promise<void> {
    const state = attachment(socket);
    this.failPending(socket, 'The relay disconnected while this request was in flight; its outcome is unknown.');
    if (!state.welcomed) return;
    // A closed socket can stay listed for a while; it must not count as the live relay.
    socket.serializeAttachment({ ...state, welcomed: false } satisfies SocketAttachment);
    const stillConnected = this.ctx.getWebSockets(RELAY_TAG).some((other) => other !== socket && attachment(other).welcomed);
    if (stillConnected) return;
    logEvent('warn', 'relay disconnected', { relayId: state.relayId, why });
    await this.noteDisconnected();
  }

  private async noteDisconnected(): Promise<void> {
    const record = await this.ctx.storage.get<RelayRecord>(RELAY_RECORD_KEY);
    if (record) await this.ctx.storage.put(RELAY_RECORD_KEY, { ...record, disconnectedAt: new Date().toISOString() });
  }

  private failPending(socket: WebSocket, message: string): void {
    for (const [id, request] of this.pending) {
      if (request.socket !== socket) continue;
      this.pending.delete(id);
      clearTimeout(request.timer);
      request.streamAbort.abort();
      request.resolve(failure('relay_disconnected', message));
    }
  }

  private take(id: string, socket: WebSocket): Pending | undefined {
    const request = this.pending.get(id);
    if (!request || request.socket !== socket) return undefined;
    this.pending.delete(id);
    clearTimeout(request.timer);
    request.streamAbort.abort();
    return request;
  }

  private onSinkChunk(id: string, socket: WebSocket, sink: StreamSink, sequence: number, payload: Uint8Array): void {
    if (sequence !== sink.nextSequence || sink.bytes + payload.length > sink.limit) {
      const request = this.take(id, socket);
      request?.resolve(failure('protocol_error', "The relay's file stream broke (order or size)."));
      this.trySend(socket, { type: 'cancel', id });
      return;
    }
    sink.nextSequence += 1;
    sink.bytes += payload.length;
    sink.onFirstBytes();
    sink.controller.enqueue(payload.slice());
    // Grant more only while the reader keeps up; otherwise owe it until pull() asks.
    if ((sink.controller.desiredSize ?? 0) > 0) this.trySend(socket, { type: 'credit', id, bytes: payload.length });
    else sink.owed += payload.length;
  }

  /** File bytes from the relay: in order, within the request's limit, credit granted back. */
  private onChunk(socket: WebSocket, frame: Uint8Array): void {
    const parsed = decodeChunk(frame);
    if (!parsed.ok) {
      this.onInvalidFrame(socket, `binary frame: ${parsed.reason}`, null);
      return;
    }
    const { id, sequence, payload } = parsed.chunk;
    const request = this.pending.get(id);
    if (request?.socket === socket && request.sink) {
      this.onSinkChunk(id, socket, request.sink, sequence, payload);
      return;
    }
    const incoming = request?.socket === socket ? request.incoming : undefined;
    if (!request || !incoming) {
      this.onStrayFrame(socket, 'chunk', id);
      return;
    }
    const problem =
      sequence !== incoming.nextSequence
        ? `chunk ${sequence} arrived where ${incoming.nextSequence} was expected`
        : incoming.bytes + payload.length > incoming.limit
          ? `more than the ${incoming.limit} bytes asked for arrived`
          : null;
    if (problem) {
      this.take(id, socket)?.resolve(failure('protocol_error', `The relay's file stream broke: ${problem}.`));
      this.trySend(socket, { type: 'cancel', id });
      return;
    }
    incoming.nextSequence += 1;
    incoming.bytes += payload.length;
    incoming.chunks.push(payload.slice());
    if (payload.length > 0) this.trySend(socket, { type: 'credit', id, bytes: payload.length });
  }

  /**
   * Count an invalid frame against its connection (in the attachment, which outlives hibernation);
   * a relay that keeps sending nonsense is closed with 1002 (protocol error) and its requests fail.
   */
  private onInvalidFrame(socket: WebSocket, reason: string, id: string | null): void {
    const state = attachment(socket);
    const invalidFrames = (state.invalidFrames ?? 0) + 1;
    socket.serializeAttachment({ ...state, invalidFrames } satisfies SocketAttachment);
    logEvent('warn', 'rejected an invalid frame from the relay', {
      relayId: state.relayId,
      reason: boundText(reason, 1000),
      ...(id !== null ? { id } : {}),
      invalidFrames,
    });
    if (invalidFrames >= MAX_INVALID_FRAMES) {
      this.trySend(socket, {
        type: 'error',
        code: 'protocol_error',
        message: `Closing: ${invalidFrames} invalid frames on this connection (last: ${boundText(reason, 1000)}).`,
      });
      this.retire(
        socket,
        1002,
        'too many invalid frames',
        'The relay connection was closed for sending invalid frames; the outcome of this request is unknown.',
      );
      return;
    }
    this.trySend(socket, { type: 'error', code: 'protocol_error', message: boundText(`Invalid frame: ${reason}`) });
  }

  /**
   * A frame for a request that is not in flight here: late (the request timed out or was
   * cancelled), or the relay is confused. Logged with the relay's name, a few per minute at most.
   */
  private onStrayFrame(socket: WebSocket, type: string, id: string): void {
    const now = Date.now();
    if (now - this.strayLog.windowStart >= 60_000) {
      if (this.strayLog.skipped > 0)
        logEvent('warn', 'more frames for requests not in flight were not logged', { relayId: attachment(socket).relayId, skipped: this.strayLog.skipped });
      this.strayLog.windowStart = now;
      this.strayLog.logged = 0;
      this.strayLog.skipped = 0;
    }
    if (this.strayLog.logged >= STRAY_LOGS_PER_MINUTE) {
      this.strayLog.skipped += 1;
      return;
    }
    this.strayLog.logged += 1;
    logEvent('warn', 'relay sent a frame for a request that is not in flight', { relayId: attachment(socket).relayId, type, id });
  }

  private trySend(socket: WebSocket, frame: HubFrame): boolean {
    try {
      send(socket, frame);
      return true;
    } catch (error) {
      logEvent('warn', 'could not send to the relay', { error: error instanceof Error ? error.message : String(error) });
      return false;
    }
  }

  /** The welcomed relay socket, unless it has gone quiet (a half-open TCP connection looks open). */
  private liveSocket(): Outcome<WebSocket> {
    // A socket being closed is still listed for a while; the newest welcomed one is the relay.
    const welcomed = this.ctx.getWebSockets(RELAY_TAG).filter((candidate) => attachment(candidate).welcomed);
    const socket = welcomed.sort((a, b) => (attachment(b).welcomedAt ?? 0) - (attachment(a).welcomedAt ?? 0))[0];
    if (!socket) {
      return failure('relay_not_connected', 'No relay is connected to this server.');
    }
    // The relay pings PINGS_PER_INTERVAL times per interval; HEARTBEAT_SILENCE_INTERVALS without one means it is gone.
    const lastPing = Math.max(this.ctx.getWebSocketAutoResponseTimestamp(socket)?.getTime() ?? 0, attachment(socket).welcomedAt ?? 0);
    const silentForMs = Date.now() - lastPing;
    if (silentForMs > this.heartbeatMs * HEARTBEAT_SILENCE_INTERVALS) {
      logEvent('warn', 'relay stopped sending heartbeats; closing its socket', {
        relayId: attachment(socket).relayId,
        silentForMs,
        heartbeatMs: this.heartbeatMs,
      });
      this.retire(
        socket,
        4002,
        'heartbeat timeout',
        'The relay disconnected (it stopped answering heartbeats) while this request was in flight; its outcome is unknown.',
      );
      return failure('relay_not_connected', 'The relay stopped sending heartbeats and was disconnected.');
    }
    return success(socket);
  }

  /** Stop using a socket: it no longer counts as the relay, its requests fail, and it is closed. */
  private retire(socket: WebSocket, code: number, reason: string, pendingMessage: string): void {
    const wasWelcomed = attachment(socket).welcomed;
    socket.serializeAttachment({ ...attachment(socket), welcomed: false } satisfies SocketAttachment);
    this.failPending(socket, pendingMessage);
    // onSocketGone will see it as never welcomed, so "last seen" is recorded here.
    if (wasWelcomed) void this.noteDisconnected();
    try {
      socket.close(code, reason);
    } catch {
      // Already closing.
    }
  }
}
