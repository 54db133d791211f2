/**
 * The relay's one outbound connection: a WebSocket to the Worker's /relay endpoint. It says hello
 * with the host inventory, answers requests by running operations, streams their output, pings
 * to detect half-open sockets, and reconnects with capped exponential backoff and full jitter.
 * Requests are never replayed: work in flight when the socket drops is stopped, because nobody
 * can receive its result any more (the Worker has already told the caller the outcome is unknown).
 */
import WebSocket from 'ws';
import { failure, type Outcome } from '../shared/errors.ts';
import { boundText } from '../shared/bounded-text.ts';
import {
  HEARTBEAT_INTERVAL_MS,
  HEARTBEAT_SILENCE_INTERVALS,
  MAX_FRAME_CHARS,
  MAX_OUTPUT_CHUNK_CHARS,
  PINGS_PER_INTERVAL,
  PING_FRAME,
  PROTOCOL_VERSION,
  parseHubFrame,
  type OperationResult,
  type RelayFrame,
  type RequestFrame,
} from '../shared/protocol.ts';
import { VERSION } from '../shared/version.ts';
import { log } from './log.ts';
import { RELAY_ID_HEADER } from '../shared/relay-credential.ts';
import type { ByteStreams, RelayOperations } from './operations.ts';
import { decodeChunk } from '../shared/binary-frames.ts';
import { ByteReceiver, ByteSender } from '../shared/byte-streams.ts';
import { formatCount } from '../shared/format-count.ts';

export interface BackoffSettings {
  baseMs: number;
  capMs: number;
  /** A connection that was welcomed and kept answering this long resets the backoff. */
  healthyAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffSettings = { baseMs: 500, capMs: 30_000, healthyAfterMs: 60_000 };
const WELCOME_TIMEOUT_MS = 10_000;
const CLOSE_HANDSHAKE_MS = 3_000;
/** Output is sent when this much is pending, or after OUTPUT_FLUSH_MS, whichever comes first. */
const OUTPUT_FLUSH_CHARS = 16 * 1024;
const OUTPUT_FLUSH_MS = 20;

export interface HubConnectionOptions {
  url: string;
  token: string;
  relayId: string;
  operations: RelayOperations;
  /** The heartbeat interval (default HEARTBEAT_INTERVAL_MS; RELAY_HEARTBEAT_MS sets it for tests). */
  heartbeatMs?: number;
  backoff?: BackoffSettings;
  /** Told each time a reconnect is scheduled (attempt counts consecutive unhealthy connections). */
  onReconnectScheduled?: (attempt: number, delayMs: number) => void;
}

/** Full jitter (AWS architecture blog): uniform in [0, min(cap, base·2^attempt)]. */
export function backoffDelay(attempt: number, settings: BackoffSettings, random: () => number = Math.random): number {
  const ceiling = Math.min(settings.capMs, settings.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/**
 * The text of a frame the relay sends. An answer that would not fit a frame (MAX_FRAME_CHARS; the
 * hub refuses larger ones) becomes an error for the same request, so the caller hears at once
 * instead of waiting for its deadline.
 */
export function frameText(frame: RelayFrame): string {
  const text = JSON.stringify(frame);
  if (text.length <= MAX_FRAME_CHARS || !('id' in frame) || frame.id === undefined) return text;
  return JSON.stringify({
    type: 'error',
    id: frame.id,
    code: 'protocol_error',
    message: `The relay's answer (${formatCount(text.length)} characters) does not fit a frame (at most ${formatCount(MAX_FRAME_CHARS)}); ask for less at once.`,
  } satisfies RelayFrame);
}

/** Accept the Worker's base URL (https://…) or a full WebSocket URL. */
export function relayEndpoint(url: string): string {
  const parsed = new URL(url);
  if (parsed.protocol === 'https:') parsed.protocol = 'wss:';
  else if (parsed.protocol === 'http:') parsed.protocol = 'ws:';
  else if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:')
    throw new Error(`RELAY_URL must start with https://, http://, wss:// or ws://, not ${parsed.protocol}`);
  if (parsed.pathname === '/' || parsed.pathname === '') parsed.pathname = '/relay';
  return parsed.toString();
}

interface InFlight {
  controller: AbortController;
  done: Promise<void>;
  sender: ByteSender;
  receiver?: ByteReceiver;
}

/** Batches a request's output into frames of bounded size. */
class OutputBatcher {
  private readonly pending: { stdout: string; stderr: string } = { stdout: '', stderr: '' };
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly id: string;
  private readonly send: (frame: RelayFrame) => void;

  constructor(id: string, send: (frame: RelayFrame) => void) {
    this.id = id;
    this.send = send;
  }

  add(stream: 'stdout' | 'stderr', text: string): void {
    this.pending[stream] += text;
    if (this.pending.stdout.length + this.pending.stderr.length >= OUTPUT_FLUSH_CHARS) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), OUTPUT_FLUSH_MS);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const stream of ['stdout', 'stderr'] as const) {
      const text = this.pending[stream];
      this.pending[stream] = '';
      for (let offset = 0; offset < text.length; offset += MAX_OUTPUT_CHUNK_CHARS) {
        this.send({ type: 'output', id: this.id, stream, data: text.slice(offset, offset + MAX_OUTPUT_CHUNK_CHARS) });
      }
    }
  }
}

export class HubConnection {
  private readonly options: HubConnectionOptions;
  private readonly endpoint: string;
  private readonly backoff: BackoffSettings;
  private readonly heartbeatMs: number;
  private socket: WebSocket | null = null;
  private attempt = 0;
  private welcomedAt = 0;
  /** When the hub was last heard from (a pong or any other frame): silence means a half-open socket. */
  private lastHeard = 0;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private welcomeTimer: ReturnType<typeof setTimeout> | undefined;
  private stopping = false;
  private readonly inFlight = new Map<string, InFlight>();
  private welcomedListeners: Array<() => void> = [];

  constructor(options: HubConnectionOptions) {
    this.options = options;
    this.endpoint = relayEndpoint(options.url);
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.heartbeatMs = options.heartbeatMs ?? HEARTBEAT_INTERVAL_MS;
  }

  start(): void {
    this.connect();
  }

  /** Resolves once the hub has welcomed this relay (used by the local launcher and tests). */
  whenWelcomed(): Promise<void> {
    if (this.welcomedAt > 0 && this.socket?.readyState === WebSocket.OPEN) return Promise.resolve();
    return new Promise((resolve) => this.welcomedListeners.push(resolve));
  }

  /**
   * Stop taking work, let requests in flight finish for up to `graceMs`, stop the rest, then close.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.stopping = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const pending = [...this.inFlight.values()];
    if (pending.length > 0) {
      log('info', 'draining requests in flight', { count: pending.length, graceMs });
      const grace = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([Promise.all(pending.map((request) => request.done)), grace]);
      for (const request of this.inFlight.values()) request.controller.abort();
      await Promise.all([...this.inFlight.values()].map((request) => request.done));
    }
    this.stopHeartbeat();
    const socket = this.socket;
    if (socket && socket.readyState === WebSocket.OPEN) {
      // Wait for the close handshake: it guarantees the last results were flushed before the
      // process exits (exiting right after send() loses them).
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.close(1001, 'relay shutting down');
      await Promise.race([closed, new Promise<void>((resolve) => setTimeout(resolve, CLOSE_HANDSHAKE_MS).unref())]);
    }
    this.options.operations.close();
  }

  private connect(): void {
    if (this.stopping) return;
    log('info', 'connecting to hub', { endpoint: this.endpoint, attempt: this.attempt });
    const socket = new WebSocket(this.endpoint, {
      headers: { Authorization: `Bearer ${this.options.token}`, [RELAY_ID_HEADER]: this.options.relayId },
      handshakeTimeout: WELCOME_TIMEOUT_MS,
      maxPayload: 8 * 1024 * 1024,
      // File bytes are mostly incompressible, and deflating every frame on both ends capped
      // transfers at ~25 MB/s; JSON frames are small, so compression buys nothing here.
      perMessageDeflate: false,
    });
    this.socket = socket;
    socket.on('unexpected-response', (_request, response) => {
      const status = response.statusCode ?? 0;
      const hint =
        status === 401 || status === 403
          ? 'the relay token was refused: check RELAY_TOKEN (a token from "admin relays add", or the one RELAY_TOKEN_HASH was made from)'
          : status === 409
            ? 'a relay with this name is already connected: stop the other one (or have an admin revoke this credential if it was copied); retrying'
            : 'check RELAY_URL points at the Worker';
      // The Worker's own words say which of these it is; they are short and never secret.
      let said = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        if (said.length < 500) said += chunk;
      });
      let reported = false;
      const report = (): void => {
        if (reported) return;
        reported = true;
        log('error', 'hub refused the WebSocket upgrade', { status, hint, ...(said ? { message: said.slice(0, 500) } : {}) });
        socket.terminate();
      };
      response.once('end', report);
      response.once('close', report);
      response.once('error', report);
    });
    socket.on('open', () => {
      socket.send(
        JSON.stringify({
          type: 'hello',
          protocol: PROTOCOL_VERSION,
          relayId: this.options.relayId,
          version: VERSION,
          hosts: this.options.operations.inventory(),
        } satisfies RelayFrame),
      );
      this.welcomeTimer = setTimeout(() => {
        log('warn', 'no welcome from hub in time; reconnecting', { timeoutMs: WELCOME_TIMEOUT_MS });
        socket.terminate();
      }, WELCOME_TIMEOUT_MS);
    });
    socket.on('message', (data, isBinary) => {
      this.lastHeard = Date.now();
      if (isBinary) {
        this.onChunk(Buffer.isBuffer(data) ? data : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]));
        return;
      }
      this.onFrame(socket, data.toString());
    });
    socket.on('close', (code, reason) => this.onClose(socket, code, reason.toString()));
    socket.on('error', (error) => log('warn', 'hub socket error', { error: error.message }));
  }

  private onFrame(socket: WebSocket, text: string): void {
    const parsed = parseHubFrame(text);
    if (!parsed.ok) {
      log('error', 'rejected an invalid frame from the hub', { reason: parsed.reason });
      return;
    }
    const frame = parsed.frame;
    switch (frame.type) {
      case 'welcome': {
        if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
        if (frame.protocol !== PROTOCOL_VERSION) {
          log('error', 'hub speaks another protocol version', { hub: frame.protocol, relay: PROTOCOL_VERSION });
          socket.close(4000, 'protocol version mismatch');
          return;
        }
        this.welcomedAt = Date.now();
        this.lastHeard = Date.now();
        this.startHeartbeat(socket);
        log('info', 'connected to hub', { relayId: this.options.relayId, hosts: this.options.operations.inventory().length });
        for (const listener of this.welcomedListeners.splice(0)) listener();
        return;
      }
      case 'pong':
        // lastHeard was updated when the frame arrived.
        return;
      case 'request':
        this.onRequest(socket, frame);
        return;
      case 'cancel':
        this.inFlight.get(frame.id)?.controller.abort();
        return;
      case 'error':
        log('error', 'hub reported an error', { code: frame.code, message: frame.message });
        return;
      case 'credit':
        this.inFlight.get(frame.id)?.sender.grant(frame.bytes);
        return;
      default: {
        const unhandled: never = frame;
        log('error', 'unhandled hub frame', { frame: unhandled });
      }
    }
  }

  private onChunk(data: Buffer): void {
    const parsed = decodeChunk(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    if (!parsed.ok) {
      log('warn', 'rejected an invalid binary frame from the hub', { reason: parsed.reason });
      return;
    }
    const request = this.inFlight.get(parsed.chunk.id);
    if (!request?.receiver) {
      log('warn', 'rejected file bytes for a request that expects none', { id: parsed.chunk.id });
      return;
    }
    const problem = request.receiver.push(parsed.chunk);
    if (problem) {
      log('warn', 'file byte stream broken; stopping the request', { id: parsed.chunk.id, reason: problem });
      request.controller.abort();
    }
  }

  private onRequest(socket: WebSocket, frame: RequestFrame): void {
    const send = (reply: RelayFrame): void => {
      if (socket.readyState === WebSocket.OPEN) socket.send(frameText(reply));
    };
    if (this.stopping) {
      send({ type: 'error', id: frame.id, code: 'relay_shutting_down', message: 'The relay is shutting down and takes no new requests.' });
      return;
    }
    if (this.inFlight.has(frame.id)) {
      send({ type: 'error', id: frame.id, code: 'protocol_error', message: `Request id ${frame.id} is already in flight.` });
      return;
    }
    const controller = new AbortController();
    const deadline = setTimeout(() => controller.abort(), frame.deadlineMs);
    const batcher = new OutputBatcher(frame.id, send);
    const started = performance.now();
    const operation = frame.operation;
    const sender = new ByteSender(frame.id, (bytes) => {
      if (socket.readyState !== WebSocket.OPEN) return false;
      socket.send(bytes, { binary: true });
      return true;
    });
    // Registered before the operation starts: it may ask for its byte stream synchronously.
    const entry: InFlight = { controller, sender, done: Promise.resolve() };
    this.inFlight.set(frame.id, entry);
    const streams: ByteStreams = {
      send: (data) => sender.send(data, controller.signal),
      receive: (expected) => {
        const receiver = new ByteReceiver(expected, (bytes) => send({ type: 'credit', id: frame.id, bytes }));
        entry.receiver = receiver;
        controller.signal.addEventListener('abort', () => receiver.fail('the request was stopped'), { once: true });
        receiver.start();
        return receiver;
      },
    };
    const done = this.options.operations
      .run(operation, (stream, text) => batcher.add(stream, text), controller.signal, streams, frame.caller)
      .catch((error: unknown): Outcome<OperationResult> => {
        log('error', 'operation failed unexpectedly', { id: frame.id, op: operation.op, error: error instanceof Error ? error.stack : String(error) });
        return failure('internal', 'The relay hit an unexpected error; see its log.');
      })
      .then((outcome) => {
        clearTimeout(deadline);
        batcher.flush();
        // Logged before the answer leaves (stderr is a synchronous write to a pipe or file): whoever
        // has the answer finds this line already written, as the tests that count requests rely on.
        log('info', 'request done', {
          id: frame.id,
          op: operation.op,
          ...('host' in operation ? { host: operation.host } : {}),
          ok: outcome.ok,
          ...(outcome.ok ? {} : { code: outcome.error.code }),
          // A tenth of a millisecond: the benchmark reads the relay's own share of a call from this line.
          ms: Math.round((performance.now() - started) * 10) / 10,
        });
        if (outcome.ok) send({ type: 'result', id: frame.id, result: outcome.value });
        else send({ type: 'error', id: frame.id, code: outcome.error.code, message: boundText(outcome.error.message) });
      })
      .finally(() => this.inFlight.delete(frame.id));
    entry.done = done;
  }

  private onClose(socket: WebSocket, code: number, reason: string): void {
    if (this.socket !== socket) return;
    this.socket = null;
    if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
    this.stopHeartbeat();
    for (const request of this.inFlight.values()) request.controller.abort();
    if (this.stopping) return;
    // Healthy means it worked for a while: welcomed, and the hub kept answering (a half-open
    // socket's silent stretch does not count). Then the next delay starts again from the shortest.
    const healthy = this.welcomedAt > 0 && this.lastHeard - this.welcomedAt >= this.backoff.healthyAfterMs;
    this.attempt = healthy ? 0 : this.attempt + 1;
    this.welcomedAt = 0;
    const delay = backoffDelay(this.attempt, this.backoff);
    log('warn', 'hub connection closed; reconnecting', { code, reason, attempt: this.attempt, inDelayMs: delay });
    this.options.onReconnectScheduled?.(this.attempt, delay);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  /**
   * Ping several times per interval and give up after HEARTBEAT_SILENCE_INTERVALS of hearing
   * nothing, so a half-open socket is found within two intervals (a check every interval with a
   * threshold of 2.5 took 30–45 s).
   */
  private startHeartbeat(socket: WebSocket): void {
    this.stopHeartbeat();
    const silenceMs = this.heartbeatMs * HEARTBEAT_SILENCE_INTERVALS;
    this.heartbeat = setInterval(
      () => {
        const silentForMs = Date.now() - this.lastHeard;
        if (silentForMs > silenceMs) {
          log('warn', 'hub stopped answering heartbeats; reconnecting', { silentForMs, heartbeatMs: this.heartbeatMs });
          socket.terminate();
          return;
        }
        if (socket.readyState === WebSocket.OPEN) socket.send(PING_FRAME);
      },
      Math.max(1, Math.floor(this.heartbeatMs / PINGS_PER_INTERVAL)),
    );
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }
}
