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

/**
 * Send a whole ReadableStream that should hold exactly `expected` bytes (an HTTP body with its
 * Content-Length), in chunks within credit. 'short' and 'long' report a body whose length was
 * not what it claimed; sending stops at the first byte past `expected`.
 */
export async function sendStream(sender: ByteSender, stream: ReadableStream<Uint8Array>, expected: number, signal: AbortSignal): Promise<StreamSendOutcome> {
  const reader = stream.getReader();
  let received = 0;
  // HTTP bodies arrive in pieces of a few KiB; gather them into full chunks so each frame (and
  // each write on the host) carries as much as it can.
  const gathered = new Uint8Array(MAX_CHUNK_BYTES);
  let fill = 0;
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) {
        if (fill > 0 && !(await sender.send(gathered.slice(0, fill), signal))) return 'aborted';
        return received === expected ? 'ok' : 'short';
      }
      if (received + next.value.length > expected) return 'long';
      received += next.value.length;
      let offset = 0;
      while (offset < next.value.length) {
        const take = Math.min(MAX_CHUNK_BYTES - fill, next.value.length - offset);
        gathered.set(next.value.subarray(offset, offset + take), fill);
        fill += take;
        offset += take;
        // The chunk that completes the announced size waits until the body is seen to end: a
        // body that turns out longer must not have been written in full first.
        const completes = received === expected && offset === next.value.length;
        if (fill === MAX_CHUNK_BYTES && !completes) {
          if (!(await sender.send(gathered.slice(0, fill), signal))) return 'aborted';
          fill = 0;
        }
      }
    }
  } catch {
    return signal.aborted ? 'aborted' : 'failed';
  } finally {
    reader.cancel().catch(() => undefined);
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
    this.queue.push(chunk.payload.slice());
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
