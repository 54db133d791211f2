import { describe, expect, it } from 'vitest';
import { decodeChunk, MAX_CHUNK_BYTES } from '../../../shared/binary-frames.ts';
import { ByteSender, sendStream } from '../../../shared/byte-streams.ts';

/** A sender with ample credit that records each chunk's payload. */
function recordingSender(): { sender: ByteSender; payloads: Uint8Array[] } {
  const payloads: Uint8Array[] = [];
  const sender = new ByteSender('x', (frame) => {
    const parsed = decodeChunk(frame);
    if (!parsed.ok) throw new Error(parsed.reason);
    payloads.push(parsed.chunk.payload.slice());
    return true;
  });
  sender.grant(1_000_000_000);
  return { sender, payloads };
}

/** The same bytes as a byte stream (as workerd gives HTTP bodies) or a plain stream, in pieces. */
function body(kind: 'bytes' | 'plain', pieces: Uint8Array[]): ReadableStream<Uint8Array> {
  if (kind === 'plain') {
    return new ReadableStream<Uint8Array>({
      start(controller) {
        for (const piece of pieces) controller.enqueue(piece.slice());
        controller.close();
      },
    });
  }
  return new ReadableStream({
    type: 'bytes',
    start(controller) {
      for (const piece of pieces) controller.enqueue(piece.slice());
      controller.close();
    },
  }) as ReadableStream<Uint8Array>;
}

function patterned(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, index) => (index * 31 + 7) & 0xff);
}

function split(data: Uint8Array, pieceSize: number): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  for (let offset = 0; offset < data.length; offset += pieceSize) pieces.push(data.subarray(offset, offset + pieceSize));
  return pieces;
}

const signal = new AbortController().signal;

describe.each(['bytes', 'plain'] as const)('sending an HTTP body (%s stream)', (kind) => {
  it('sends small pieces as full chunks, byte-exact', async () => {
    const data = patterned(3 * MAX_CHUNK_BYTES + 1234);
    const { sender, payloads } = recordingSender();
    expect(await sendStream(sender, body(kind, split(data, 4096)), data.length, signal)).toBe('ok');
    expect(payloads.map((payload) => payload.length)).toEqual([MAX_CHUNK_BYTES, MAX_CHUNK_BYTES, MAX_CHUNK_BYTES, 1234]);
    expect(Buffer.concat(payloads).equals(Buffer.from(data))).toBe(true);
  });

  it('sends an empty body as no chunks at all', async () => {
    const { sender, payloads } = recordingSender();
    expect(await sendStream(sender, body(kind, []), 0, signal)).toBe('ok');
    expect(payloads).toHaveLength(0);
  });

  it('holds the chunk that completes the size until the body is seen to end, and refuses a longer body', async () => {
    const data = patterned(2 * MAX_CHUNK_BYTES + 1);
    const { sender, payloads } = recordingSender();
    expect(await sendStream(sender, body(kind, split(data, 10_000)), 2 * MAX_CHUNK_BYTES, signal)).toBe('long');
    // The first chunk went; the second, which would have completed the announced size, did not.
    expect(payloads.map((payload) => payload.length)).toEqual([MAX_CHUNK_BYTES]);
  });

  it('reports a body that ends short of its announced size', async () => {
    const { sender } = recordingSender();
    expect(await sendStream(sender, body(kind, [patterned(10)]), 20, signal)).toBe('short');
  });

  it('stops when the signal aborts', async () => {
    const controller = new AbortController();
    const sender = new ByteSender('x', () => true);
    // No credit: the send waits until the abort.
    const sending = sendStream(sender, body(kind, [patterned(100)]), 100, controller.signal);
    controller.abort();
    expect(await sending).toBe('aborted');
  });
});
