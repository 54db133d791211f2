/**
 * Credit-based byte streams over the relay WebSocket, used by both ends. A sender sends chunks
 * only within the credit its receiver granted; a receiver grants a window up front and more as
 * it consumes, so memory on either side stays within one window however large the file.
 */
import { encodeChunk, MAX_CHUNK_BYTES, STREAM_WINDOW_BYTES, type Chunk } from './binary-frames.ts';

export class ByteSender {
  private readonly id: string;
  private readonly sendFrame: (frame: Uint8Array) => boolean;
  private credit = 0;
  private sequence = 0;
  private wake: (() => void) | undefined;

  constructor(id: string, sendFrame: (frame: Uint8Array) => boolean) {
    this.id = id;
    this.sendFrame = sendFrame;
  }

  grant(bytes: number): void {
    this.credit += bytes;
    this.wake?.();
  }

  /** Send all of `data`; false when the connection failed or `signal` aborted first. */
  async send(data: Uint8Array, signal: AbortSignal): Promise<boolean> {
    let offset = 0;
    while (offset < data.length) {
      if (signal.aborted) return false;
      if (this.credit <= 0) {
        await new Promise<void>((resolve) => {
          const onAbort = (): void => resolve();
          this.wake = () => {
            signal.removeEventListener('abort', onAbort);
            resolve();
          };
          signal.addEventListener('abort', onAbort, { once: true });
        });
        this.wake = undefined;
        continue;
      }
      const length = Math.min(MAX_CHUNK_BYTES, this.credit, data.length - offset);
      if (!this.sendFrame(encodeChunk({ id: this.id, sequence: this.sequence, payload: data.subarray(offset, offset + length) }))) return false;
      this.sequence += 1;
      this.credit -= length;
      offset += length;
    }
    return true;
  }
}

export type StreamSendOutcome = 'ok' | 'short' | 'long' | 'aborted' | 'failed';

/** Fills a buffer from a stream; `bytes` < the buffer's length only when the stream ended. */
type FillFrom = (buffer: Uint8Array<ArrayBuffer>) => Promise<{ bytes: number; buffer: Uint8Array<ArrayBuffer> }>;

/** A BYOB reader as both runtimes have it (Node's types lack workerd's `readAtLeast`). */
interface ByobReader {
  read(view: Uint8Array<ArrayBuffer>): Promise<ReadableStreamReadResult<Uint8Array<ArrayBuffer>>>;
  /** workerd's extension: resolves once at least `min` bytes are in `view`, or at the end. */
  readAtLeast?(min: number, view: Uint8Array<ArrayBuffer>): Promise<ReadableStreamReadResult<Uint8Array<ArrayBuffer>>>;
  cancel(): Promise<void>;
}

/**
 * Reads a stream a whole buffer at a time. A byte stream (an HTTP body in workerd) is read
 * straight into the buffer: its pieces are a few KiB each, and reading them one by one cost
 * more CPU than anything else in an upload. Other streams are gathered piece by piece.
 */
function chunkReader(stream: ReadableStream<Uint8Array>): { fill: FillFrom; release: () => void } {
  let byob: ByobReader | undefined;
  try {
    byob = stream.getReader({ mode: 'byob' }) as unknown as ByobReader;
  } catch {
    byob = undefined;
  }
  if (byob) {
    const reader = byob;
    return {
      // BYOB reads hand the buffer back detached and re-wrapped: the caller keeps the new one.
      async fill(buffer) {
        let view = buffer;
        let filled = 0;
        while (filled < view.length) {
          const target = view.subarray(filled);
          const next = reader.readAtLeast ? await reader.readAtLeast(target.length, target) : await reader.read(target);
          if (!next.value) break;
          view = new Uint8Array(next.value.buffer, view.byteOffset, view.length);
          filled += next.value.byteLength;
          if (next.done) break;
          if (next.value.byteLength === 0) break;
        }
        return { bytes: filled, buffer: view };
      },
      release: () => void reader.cancel().catch(() => undefined),
    };
  }
  const reader = stream.getReader();
  let rest: Uint8Array | undefined;
  return {
    async fill(buffer) {
      let filled = 0;
      while (filled < buffer.length) {
        if (!rest || rest.length === 0) {
          const next = await reader.read();
          if (next.done) break;
          rest = next.value;
          continue;
        }
        const take = Math.min(buffer.length - filled, rest.length);
        buffer.set(rest.subarray(0, take), filled);
        rest = rest.subarray(take);
        filled += take;
      }
      return { bytes: filled, buffer };
    },
    release: () => void reader.cancel().catch(() => undefined),
  };
}

/**
 * Send a whole ReadableStream that should hold exactly `expected` bytes (an HTTP body with its
 * Content-Length), in full chunks within credit. 'short' and 'long' report a body whose length
 * was not what it claimed; nothing past `expected` is sent, and the chunk that completes the
 * announced size is held until the body is seen to end, so a longer body is never written whole.
 */
export async function sendStream(sender: ByteSender, stream: ReadableStream<Uint8Array>, expected: number, signal: AbortSignal): Promise<StreamSendOutcome> {
  const reader = chunkReader(stream);
  // One byte over a chunk: room to ask for the byte that would show the body is longer.
  let buffer: Uint8Array<ArrayBuffer> = new Uint8Array(MAX_CHUNK_BYTES + 1);
  let sent = 0;
  try {
    for (;;) {
      const remaining = expected - sent;
      // When the rest fits in this chunk, ask for one byte more: getting it means the body is long.
      const asked = remaining <= MAX_CHUNK_BYTES ? remaining + 1 : MAX_CHUNK_BYTES;
      const filled = await reader.fill(buffer.subarray(0, asked));
      buffer = new Uint8Array(filled.buffer.buffer);
      if (filled.bytes > remaining) return 'long';
      if (filled.bytes > 0 && !(await sender.send(buffer.subarray(0, filled.bytes), signal))) return 'aborted';
      sent += filled.bytes;
      if (filled.bytes < asked) return sent === expected ? 'ok' : 'short';
    }
  } catch {
    return signal.aborted ? 'aborted' : 'failed';
  } finally {
    reader.release();
  }
}

/**
 * Receives exactly `expected` bytes. Iterate it to consume them; credit is granted as chunks are
 * consumed. A chunk out of order or beyond `expected` fails the stream.
 */
export class ByteReceiver implements AsyncIterable<Uint8Array> {
  private readonly expected: number;
  private readonly grant: (bytes: number) => void;
  private readonly queue: Uint8Array[] = [];
  private received = 0;
  private nextSequence = 0;
  private error: string | null = null;
  private wake: (() => void) | undefined;

  constructor(expected: number, grant: (bytes: number) => void) {
    this.expected = expected;
    this.grant = grant;
  }

  start(): void {
    if (this.expected > 0) this.grant(Math.min(STREAM_WINDOW_BYTES, this.expected));
  }

  /** Returns a reason when the chunk breaks the stream's rules. */
  push(chunk: Chunk): string | null {
    if (this.error) return this.error;
    if (chunk.sequence !== this.nextSequence) return this.fail(`chunk ${chunk.sequence} arrived where ${this.nextSequence} was expected`);
    if (this.received + chunk.payload.length > this.expected) return this.fail(`more than the announced ${this.expected} bytes arrived`);
    this.nextSequence += 1;
    this.received += chunk.payload.length;
    // No copy: the payload is a view of its frame, which nothing else keeps.
    this.queue.push(chunk.payload);
    this.wake?.();
    return null;
  }

  fail(reason: string): string {
    this.error ??= reason;
    this.wake?.();
    return this.error;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    let consumed = 0;
    let granted = Math.min(STREAM_WINDOW_BYTES, this.expected);
    while (consumed < this.expected) {
      const next = this.queue.shift();
      if (next) {
        consumed += next.length;
        // Keep one window ahead of what has been consumed.
        const wanted = Math.min(this.expected, consumed + STREAM_WINDOW_BYTES) - granted;
        if (wanted >= MAX_CHUNK_BYTES || (wanted > 0 && granted + wanted === this.expected)) {
          this.grant(wanted);
          granted += wanted;
        }
        yield next;
        continue;
      }
      if (this.error) throw new Error(this.error);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
  }
}

/** `chunks` as one array of `total` bytes. */
export function concatBytes(chunks: readonly Uint8Array[], total: number): Uint8Array {
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return joined;
}

/** A stream's bytes read whole, or null as soon as more than `limit` arrive (the rest is cancelled, not read). */
export async function readUpTo(body: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array | null> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      return null;
    }
    chunks.push(value);
  }
  return concatBytes(chunks, total);
}
