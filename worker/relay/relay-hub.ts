/**
 * The relay hub: a Durable Object holding one relay's WebSocket (hibernation API). This file is
 * connection and admission: the upgrade, the hello (protocol version, identity, revocation, no
 * takeover), heartbeats and liveness, retiring a connection, and the inventory the relay reported.
 * The requests in flight and their bytes are worker/relay/relay-requests.ts; what each operation
 * asks and what its result means is worker/relay/relay-adapter.ts, on the Worker's side of the RPC.
 *
 * There is one hub per relay. The WebSocket arrives here already authenticated: the /relay route
 * (worker/relay/relay-route.ts) checks the credential before the upgrade and names the relay.
 */
import { DurableObject } from 'cloudflare:workers';
import { failure, success, type Outcome } from '../../shared/errors.ts';
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
} from '../../shared/protocol.ts';
import type { LatestLine } from '../../shared/latest-line.ts';
import type { RelayInventory } from '../team/fleet.ts';
import { logEvent } from '../log.ts';
import { AUTHENTICATED_RELAY_HEADER } from './hub-stub.ts';
import { teamDirectory } from '../team/team-directory.ts';
import { RelayRequests, type ExecuteOptions, type OperationReply } from './relay-requests.ts';

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

const RELAY_TAG = 'relay';
/** A connection must say hello this soon after the upgrade, or it is dropped by the next one. */
const HELLO_TIMEOUT_MS = 10_000;
const RELAY_RECORD_KEY = 'relay';
/** A connection that sends this many invalid frames is closed with 1002 (protocol error). */
export const MAX_INVALID_FRAMES = 5;
/** Frames for requests not in flight are logged, at most this many per minute, so a flood cannot flood the log. */
const STRAY_LOGS_PER_MINUTE = 10;
function attachment(socket: WebSocket): SocketAttachment {
  const value: unknown = socket.deserializeAttachment();
  if (typeof value === 'object' && value !== null && 'welcomed' in value) return value as SocketAttachment;
  return { welcomed: false };
}

function send(socket: WebSocket, frame: HubFrame): void {
  socket.send(JSON.stringify(frame));
}

export class RelayHub extends DurableObject<Env> {
  private readonly requests: RelayRequests;
  /** The host names the relay reported (servedHosts), once read. */
  private hostNames: Set<string> | null = null;
  /** The heartbeat interval shared with the relay (RELAY_HEARTBEAT_MS shortens it for tests). */
  private readonly heartbeatMs: number;
  private readonly strayLog = { windowStart: 0, logged: 0, skipped: 0 };

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.heartbeatMs = heartbeatIntervalMs(env.RELAY_HEARTBEAT_MS);
    // Heartbeats are answered by the runtime without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
    this.requests = new RelayRequests({
      send: (socket, frame) => this.trySend(socket, frame),
      stray: (socket, type, id) => this.onStrayFrame(socket, type, id),
      invalid: (socket, reason) => this.onInvalidFrame(socket, reason, null),
      watch: () => void this.watchHeartbeats().catch((error: unknown) => logEvent('warn', 'could not schedule the heartbeat check', { error: String(error) })),
    });
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
      this.requests.onChunk(socket, new Uint8Array(message));
      return;
    }
    const parsed = parseRelayFrame(message);
    if (!parsed.ok) {
      // The request it answers (if its id can still be read) fails now, not at its deadline.
      const id = requestIdOf(message);
      const answered =
        id !== null &&
        this.requests.fail(id, socket, {
          code: 'protocol_error',
          message: `The relay's answer was not a valid frame (${boundText(parsed.reason, 300)}); the request may have run on the host.`,
        });
      if (answered) {
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
      case 'output':
      case 'result':
      case 'credit':
        this.requests.onReply(socket, frame);
        return;
      case 'error':
        if (frame.id === undefined) {
          logEvent('warn', 'relay reported an error', { relayId: attachment(socket).relayId, code: frame.code, message: frame.message });
          return;
        }
        this.requests.onReply(socket, frame);
        return;
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

  /**
   * Run one operation on the relay. Never throws; failures keep their error code. What the
   * operation asks and what its result means is the adapter's business (worker/relay/relay-adapter.ts);
   * the hub checks only that the relay serves the host it names: its own inventory is the truth.
   */
  async execute(id: string, operation: Operation, deadlineMs: number, options: ExecuteOptions = {}): Promise<Outcome<OperationReply>> {
    const socket = await this.admit(operation);
    if (!socket.ok) return socket;
    return this.requests.start(socket.value, attachment(socket.value).relayId ?? 'this relay', id, operation, deadlineMs, options);
  }

  /**
   * Run one operation whose bytes come back as a stream of at most `limit` bytes, read with flow
   * control. Resolves once the first bytes arrive or the request ends; the stream closes when the
   * result arrives (streamResult(id) then tells it, for the reader to check) and errors on failure.
   */
  async executeToStream(
    id: string,
    operation: Operation,
    deadlineMs: number,
    options: { userId?: string; limit: number },
  ): Promise<Outcome<{ stream: ReadableStream<Uint8Array> }>> {
    const socket = await this.admit(operation);
    if (!socket.ok) return socket;
    return this.requests.startStream(socket.value, attachment(socket.value).relayId ?? 'this relay', id, operation, deadlineMs, options);
  }

  /** The reply that ended stream `id` (executeToStream), told once. */
  async streamResult(id: string): Promise<Outcome<OperationReply>> {
    return this.requests.streamResult(id);
  }

  /**
   * The latest output line of request `id` (started with latestLine) for `userId`'s progress
   * notifications; null when there is none yet, or no such request of theirs is in flight.
   */
  async latestLine(id: string, userId: string): Promise<LatestLine | null> {
    return this.requests.latestLine(id, userId);
  }

  /** Ask the relay to stop a request; its answer (marked cancelled) still resolves the call. */
  async cancel(id: string): Promise<void> {
    this.requests.cancel(id);
  }

  /** The live relay's socket, if it serves the host `operation` names (an operation that names none goes to the relay). */
  private async admit(operation: Operation): Promise<Outcome<WebSocket>> {
    const socket = this.liveSocket();
    if (!socket.ok) return socket;
    if ('host' in operation) {
      const hosts = await this.servedHosts();
      if (!hosts.has(operation.host)) {
        return failure(
          'host_not_configured',
          `Relay "${attachment(socket.value).relayId ?? ''}" does not serve a host "${operation.host}" (it reported ${[...hosts].join(', ') || 'none'}); nothing was sent.`,
        );
      }
    }
    return socket;
  }

  /** The host names the relay reported at its hello, kept in memory once read (storage outlives hibernation). */
  private async servedHosts(): Promise<Set<string>> {
    if (!this.hostNames) {
      const record = await this.ctx.storage.get<RelayRecord>(RELAY_RECORD_KEY);
      this.hostNames = new Set(record?.hosts.map((host) => host.name) ?? []);
    }
    return this.hostNames;
  }

  /**
   * While requests are in flight, check as often as the relay pings that it is still there: the
   * runtime's auto-response timestamp (when it last answered a ping) is all the hub can observe of
   * a hibernation-friendly socket, and a half-open one must be found within two intervals.
   */
  override async alarm(): Promise<void> {
    if (this.requests.size === 0) return;
    this.liveSocket();
    if (this.requests.size > 0) await this.ctx.storage.setAlarm(Date.now() + this.checkEveryMs());
  }

  private async watchHeartbeats(): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + this.checkEveryMs());
  }

  private checkEveryMs(): number {
    return Math.max(1, Math.floor(this.heartbeatMs / PINGS_PER_INTERVAL));
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
    this.hostNames = new Set(record.hosts.map((host) => host.name));
    // Before the welcome: the next tool call, which reads the fleet from the team directory, sees these hosts.
    await teamDirectory(this.env).noteRelayConnected(hello.relayId, hello.hosts);
    socket.serializeAttachment({ ...attachment(socket), welcomed: true, relayId: hello.relayId, welcomedAt: Date.now() } satisfies SocketAttachment);
    send(socket, { type: 'welcome', protocol: PROTOCOL_VERSION, maxOutputChunkChars: MAX_OUTPUT_CHUNK_CHARS });
    logEvent('info', 'relay connected', { relayId: hello.relayId, version: hello.version, hosts: hello.hosts.length });
  }

  private async onSocketGone(socket: WebSocket, why: string): Promise<void> {
    const state = attachment(socket);
    this.requests.failAll(socket, 'The relay disconnected while this request was in flight; its outcome is unknown.');
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
    this.requests.failAll(socket, pendingMessage);
    // onSocketGone will see it as never welcomed, so "last seen" is recorded here.
    if (wasWelcomed) void this.noteDisconnected();
    try {
      socket.close(code, reason);
    } catch {
      // Already closing.
    }
  }
}
