/**
 * The requests in flight on one relay connection, and their bytes: the other half of the relay hub
 * (worker/relay/relay-hub.ts holds the connection and admission). Each request is one request frame;
 * it ends with exactly one of its result frame, its error frame, its deadline, a cancel of a stream
 * by its reader, or the connection going (then every request on it fails at once with
 * `relay_disconnected`, and nothing is re-sent: at most once). Every user holds at most a share of
 * the in-flight slots. File bytes travel as binary chunks within credit, both ways.
 *
 * This file knows the protocol's frames, not its operations: what an operation asks and what its
 * result means is the Worker-side adapter's business (worker/relay/relay-adapter.ts).
 */
import { failure, success, type Outcome, type ToolError } from '../../shared/errors.ts';
import { RELAY_REPLY_GRACE_MS } from '../../shared/limits.ts';
import { MAX_OUTPUT_CHUNK_CHARS, type HubFrame, type Operation, type OperationResult, type RelayFrame } from '../../shared/protocol.ts';
import { decodeChunk, STREAM_WINDOW_BYTES } from '../../shared/binary-frames.ts';
import { ByteSender, concatBytes, sendStream } from '../../shared/byte-streams.ts';
import { LatestLineTracker, type LatestLine } from '../../shared/latest-line.ts';
import { formatCount } from '../../shared/format-count.ts';

export interface OperationReply {
  result: OperationResult;
  stdout: string;
  stderr: string;
  /** The bytes the relay streamed back, when the request asked for them (receiveBytes). */
  data?: Uint8Array;
}

export interface ExecuteOptions {
  /** The user the request is for (their share of the in-flight slots); UNATTRIBUTED when none is given. */
  userId?: string;
  /** Characters of stdout and stderr to keep from output frames. */
  maxChars?: number;
  /** Stream this body (exactly `size` bytes) to the relay. */
  sendBody?: { body: ReadableStream<Uint8Array>; size: number };
  /** Accept up to this many bytes streamed back by the relay, collected into the reply. */
  receiveBytes?: number;
  /** Stream these bytes to the relay once it grants credit. */
  sendBytes?: Uint8Array;
  /** Keep the latest complete output line, readable with latestLine(id) (only when the client asked for progress). */
  latestLine?: boolean;
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
  latest?: LatestLineTracker;
  timer: ReturnType<typeof setTimeout>;
  incoming?: IncomingBytes;
  sender?: ByteSender;
  /**
   * Stops an outgoing byte stream when the request ends; only requests that send bytes have one
   * (aborting builds an exception with a stack: measurable on every call of a hot path).
   */
  streamAbort?: AbortController;
  resolve(outcome: Outcome<OperationReply>): void;
}

/** What the tracker needs of the connection: sending a frame, and reporting frames it cannot place. */
export interface RequestChannel {
  send(socket: WebSocket, frame: HubFrame): boolean;
  /** A frame for a request that is not in flight on that socket (late, or a confused relay). */
  stray(socket: WebSocket, type: string, id: string): void;
  /** A binary frame that does not decode. */
  invalid(socket: WebSocket, reason: string): void;
  /** Requests are in flight: make sure a silent relay is noticed (the heartbeat check). */
  watch(): void;
}

/** Requests in flight per relay; beyond this, calls are refused rather than queued without bound. */
export const MAX_PENDING = 256;
/**
 * What one user may hold of MAX_PENDING: a quarter, so one person (or one runaway assistant)
 * cannot take the relay away from everyone else; at least 16, so real parallel work still fits.
 */
export const USER_PENDING_SHARE = Math.max(16, Math.floor(MAX_PENDING / 4));
/** The bucket of requests no user is named for (relay probes, internal checks). */
export const UNATTRIBUTED = '(unattributed)';
/** Allowance for the relay's answer to reach the hub after the relay's own deadline. */
const REPLY_TRANSIT_MS = 1_000;
const EARLY_CANCEL_MEMORY_MS = 60_000;
/** How long the result that ended a stream is kept for its reader to check (streamResult). */
const STREAM_RESULT_MEMORY_MS = 60_000;

type ReplyFrame = Extract<RelayFrame, { type: 'output' | 'result' | 'credit' | 'error' }>;

export class RelayRequests {
  private readonly pending = new Map<string, Pending>();
  private readonly cancelledEarly = new Set<string>();
  private readonly streamResults = new Map<string, Outcome<OperationReply>>();
  private readonly channel: RequestChannel;

  constructor(channel: RequestChannel) {
    this.channel = channel;
  }

  get size(): number {
    return this.pending.size;
  }

  /** Send one request on `socket` and resolve with its reply. Never throws; failures keep their error code. */
  start(
    socket: WebSocket,
    relayId: string,
    id: string,
    operation: Operation,
    deadlineMs: number,
    options: ExecuteOptions & { sink?: StreamSink },
  ): Promise<Outcome<OperationReply>> {
    if (this.cancelledEarly.delete(id)) return Promise.resolve(failure('cancelled', 'The request was cancelled before it reached the relay; nothing ran.'));
    if (this.pending.has(id)) return Promise.resolve(failure('internal', `Request id ${id} is already in flight.`));
    const userId = options.userId ?? UNATTRIBUTED;
    const busy = this.busyRefusal(userId, relayId);
    if (busy) return Promise.resolve(busy);
    // The relay gets the whole budget (its own timeout handling must finish inside it); the hub
    // waits a little longer for the answer to travel back.
    const relayDeadlineMs = deadlineMs + RELAY_REPLY_GRACE_MS;
    const streamAbort = options.sendBytes || options.sendBody ? new AbortController() : undefined;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const expired = this.pending.get(id);
        if (!expired) return;
        this.pending.delete(id);
        expired.streamAbort?.abort();
        this.channel.send(socket, { type: 'cancel', id });
        resolve(failure('relay_timeout', `The relay did not answer within ${Math.round(relayDeadlineMs / 1000)} s.`));
      }, relayDeadlineMs + REPLY_TRANSIT_MS);
      const pending: Pending = {
        operation,
        socket,
        userId,
        stdout: '',
        stderr: '',
        maxChars: options.maxChars ?? 0,
        timer,
        resolve,
        ...(options.receiveBytes !== undefined ? { incoming: { chunks: [], bytes: 0, nextSequence: 0, limit: options.receiveBytes } } : {}),
        ...(options.sink ? { sink: options.sink } : {}),
        ...(options.latestLine ? { latest: new LatestLineTracker(options.maxChars ?? 0) } : {}),
        ...(streamAbort ? { streamAbort } : {}),
        ...(options.sendBytes || options.sendBody
          ? {
              sender: new ByteSender(id, (frame) => {
                try {
                  socket.send(frame);
                  return true;
                } catch {
                  return false;
                }
              }),
            }
          : {}),
      };
      this.pending.set(id, pending);
      this.channel.watch();
      // The caller's id lets the relay share each host's SSH channels fairly between users.
      if (!this.channel.send(socket, { type: 'request', id, deadlineMs: relayDeadlineMs, operation, ...(userId !== UNATTRIBUTED ? { caller: userId } : {}) })) {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(failure('relay_disconnected', 'The relay connection failed while sending the request; it was not delivered.'));
        return;
      }
      if (pending.incoming || pending.sink) this.channel.send(socket, { type: 'credit', id, bytes: STREAM_WINDOW_BYTES });
      if (pending.sender && streamAbort && options.sendBytes) void pending.sender.send(options.sendBytes, streamAbort.signal);
      if (pending.sender && streamAbort && options.sendBody) {
        const { body, size } = options.sendBody;
        void sendStream(pending.sender, body, size, streamAbort.signal).then((sent) => {
          if (sent === 'ok' || sent === 'aborted') return;
          const why =
            sent === 'short'
              ? `The upload ended before the ${formatCount(size)} bytes its Content-Length announced`
              : sent === 'long'
                ? `The upload sent more than the ${formatCount(size)} bytes its Content-Length announced`
                : 'Reading the upload failed';
          this.take(id, socket)?.resolve(failure('invalid_argument', `${why}; nothing was written and the target is unchanged.`));
          this.channel.send(socket, { type: 'cancel', id });
        });
      }
    });
  }

  /**
   * Send one request whose bytes come back as a stream (up to `limit`), read with flow control:
   * credit goes back to the relay as the reader takes bytes. Resolves once the first bytes arrive
   * or the request ends, so an early failure (a missing file) is an outcome, not a broken stream.
   * The stream closes when the result frame arrives (streamResult(id) then returns it, for the
   * reader to check) and errors when the request fails.
   */
  async startStream(
    socket: WebSocket,
    relayId: string,
    id: string,
    operation: Operation,
    deadlineMs: number,
    options: { userId?: string; limit: number },
  ): Promise<Outcome<{ stream: ReadableStream<Uint8Array> }>> {
    let firstBytes: () => void = () => undefined;
    const started = new Promise<void>((resolve) => {
      firstBytes = resolve;
    });
    let sink: StreamSink | undefined;
    const stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          sink = { controller, nextSequence: 0, bytes: 0, limit: options.limit, owed: 0, onFirstBytes: () => firstBytes() };
        },
        pull: () => {
          const pending = this.pending.get(id);
          if (pending?.sink && pending.sink.owed > 0) {
            this.channel.send(pending.socket, { type: 'credit', id, bytes: pending.sink.owed });
            pending.sink.owed = 0;
          }
        },
        cancel: () => {
          const pending = this.pending.get(id);
          if (pending) {
            this.channel.send(pending.socket, { type: 'cancel', id });
            this.take(id, pending.socket)?.resolve(failure('cancelled', 'The download was abandoned by the client.'));
          }
        },
      },
      { highWaterMark: STREAM_WINDOW_BYTES, size: (chunk) => chunk.byteLength },
    );
    if (!sink) return failure('internal', 'Could not set up the download stream.');
    const streamSink = sink;
    const done = this.start(socket, relayId, id, operation, deadlineMs, {
      ...(options.userId !== undefined ? { userId: options.userId } : {}),
      sink: streamSink,
    });
    void done.then((outcome) => {
      this.streamResults.set(id, outcome);
      setTimeout(() => this.streamResults.delete(id), STREAM_RESULT_MEMORY_MS);
      if (outcome.ok) streamSink.controller.close();
      else streamSink.controller.error(new Error(outcome.error.message));
    });
    const first = await Promise.race([started.then(() => null), done]);
    if (first && !first.ok) return first;
    return success({ stream });
  }

  /** The reply that ended stream `id` (once: it is forgotten when read), or a failure when none is known. */
  streamResult(id: string): Outcome<OperationReply> {
    const outcome = this.streamResults.get(id);
    this.streamResults.delete(id);
    return outcome ?? failure('internal', 'The outcome of this stream is not known here (it ended long ago, or the hub restarted).');
  }

  /**
   * The latest complete output line of request `id`, when it is in flight for `userId` and was
   * started with latestLine; null otherwise (also for another user's request: nothing to tell apart).
   */
  latestLine(id: string, userId: string): LatestLine | null {
    const request = this.pending.get(id);
    return request && request.userId === userId ? (request.latest?.latest() ?? null) : null;
  }

  /** Ask the relay to stop a request; its answer (marked cancelled) still resolves the call. */
  cancel(id: string): void {
    const request = this.pending.get(id);
    if (request) {
      this.channel.send(request.socket, { type: 'cancel', id });
      return;
    }
    // The cancel overtook its request (it was still being prepared): remember it briefly.
    this.cancelledEarly.add(id);
    setTimeout(() => this.cancelledEarly.delete(id), EARLY_CANCEL_MEMORY_MS);
  }

  /** A frame answering a request. */
  onReply(socket: WebSocket, frame: ReplyFrame): void {
    switch (frame.type) {
      case 'output': {
        const request = this.pending.get(frame.id);
        if (!request || request.socket !== socket) return this.channel.stray(socket, frame.type, frame.id);
        // The relay already keeps at most maxChars per stream; enforce it here too rather than trust it.
        const room = request.maxChars - request[frame.stream].length;
        const kept = room > 0 ? frame.data.slice(0, Math.min(room, MAX_OUTPUT_CHUNK_CHARS)) : '';
        request[frame.stream] += kept;
        request.latest?.push(frame.stream, kept);
        return;
      }
      case 'result': {
        const request = this.take(frame.id, socket);
        if (!request) return this.channel.stray(socket, frame.type, frame.id);
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
        if (!request || request.socket !== socket) return this.channel.stray(socket, frame.type, frame.id);
        request.sender?.grant(frame.bytes);
        return;
      }
      case 'error': {
        if (frame.id === undefined) return;
        const request = this.take(frame.id, socket);
        if (!request) return this.channel.stray(socket, frame.type, frame.id);
        request.resolve(failure(frame.code, frame.message));
        return;
      }
      default: {
        const unhandled: never = frame;
        throw new Error(`unhandled reply frame ${JSON.stringify(unhandled)}`);
      }
    }
  }

  /** End request `id` on `socket` with `error`; false when it is not in flight there. */
  fail(id: string, socket: WebSocket, error: ToolError): boolean {
    const request = this.take(id, socket);
    request?.resolve(failure(error.code, error.message));
    return request !== undefined;
  }

  /** Every request on `socket` fails at once: the connection is gone and their outcome is unknown. */
  failAll(socket: WebSocket, message: string): void {
    for (const [id, request] of this.pending) {
      if (request.socket !== socket) continue;
      this.pending.delete(id);
      clearTimeout(request.timer);
      request.streamAbort?.abort();
      request.resolve(failure('relay_disconnected', message));
    }
  }

  /** File bytes from the relay: in order, within the request's limit, credit granted back. */
  onChunk(socket: WebSocket, frame: Uint8Array): void {
    const parsed = decodeChunk(frame);
    if (!parsed.ok) {
      this.channel.invalid(socket, `binary frame: ${parsed.reason}`);
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
      this.channel.stray(socket, 'chunk', id);
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
      this.channel.send(socket, { type: 'cancel', id });
      return;
    }
    incoming.nextSequence += 1;
    incoming.bytes += payload.length;
    incoming.chunks.push(payload.slice());
    if (payload.length > 0) this.channel.send(socket, { type: 'credit', id, bytes: payload.length });
  }

  private onSinkChunk(id: string, socket: WebSocket, sink: StreamSink, sequence: number, payload: Uint8Array): void {
    if (sequence !== sink.nextSequence || sink.bytes + payload.length > sink.limit) {
      const request = this.take(id, socket);
      request?.resolve(failure('protocol_error', "The relay's file stream broke (order or size)."));
      this.channel.send(socket, { type: 'cancel', id });
      return;
    }
    sink.nextSequence += 1;
    sink.bytes += payload.length;
    sink.onFirstBytes();
    sink.controller.enqueue(payload.slice());
    // Grant more only while the reader keeps up; otherwise owe it until pull() asks.
    if ((sink.controller.desiredSize ?? 0) > 0) this.channel.send(socket, { type: 'credit', id, bytes: payload.length });
    else sink.owed += payload.length;
  }

  private take(id: string, socket: WebSocket): Pending | undefined {
    const request = this.pending.get(id);
    if (!request || request.socket !== socket) return undefined;
    this.pending.delete(id);
    clearTimeout(request.timer);
    request.streamAbort?.abort();
    return request;
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
}
