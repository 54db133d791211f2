import { describe, expect, it } from 'vitest';
import { decodeChunk, encodeChunk, MAX_CHUNK_BYTES } from '../../../shared/binary-frames.ts';
import { ByteReceiver, ByteSender } from '../../../shared/byte-streams.ts';

describe('binary chunk frames', () => {
  it('round-trips id, sequence and payload', () => {
    const payload = Uint8Array.from([0, 1, 255, 128]);
    const decoded = decodeChunk(encodeChunk({ id: 'req-1', sequence: 70_000, payload }));
    expect(decoded).toEqual({ ok: true, chunk: { id: 'req-1', sequence: 70_000, payload } });
  });

  it.each([
    ['a frame that is too short', Uint8Array.from([1, 1, 65])],
    ['an unknown kind', Uint8Array.from([9, 1, 65, 0, 0, 0, 0])],
    ['an id length beyond the frame', Uint8Array.from([1, 60, 65, 0, 0, 0, 0])],
    ['a non-printable id', Uint8Array.from([1, 1, 7, 0, 0, 0, 0])],
  ])('rejects %s', (_label, frame) => {
    expect(decodeChunk(frame).ok).toBe(false);
  });

  it('refuses to build or accept a payload over the chunk limit', () => {
    expect(() => encodeChunk({ id: 'a', sequence: 0, payload: new Uint8Array(MAX_CHUNK_BYTES + 1) })).toThrow();
    const oversized = new Uint8Array(7 + MAX_CHUNK_BYTES + 1);
    oversized.set([1, 1, 65]);
    expect(decodeChunk(oversized).ok).toBe(false);
  });
});

describe('credit-based byte streams', () => {
  it('moves a multi-window stream intact, never sending beyond the credit granted', async () => {
    const data = Uint8Array.from({ length: 2_500_000 }, (_, index) => index % 251);
    let outstanding = 0;
    let maxOutstanding = 0;
    let receiver: ByteReceiver | undefined;
    const sender = new ByteSender('s', (frame) => {
      const parsed = decodeChunk(frame);
      if (!parsed.ok || !receiver) throw new Error('bad frame');
      outstanding += parsed.chunk.payload.length;
      maxOutstanding = Math.max(maxOutstanding, outstanding);
      const problem = receiver.push(parsed.chunk);
      if (problem) throw new Error(problem);
      return true;
    });
    receiver = new ByteReceiver(data.length, (bytes) => setTimeout(() => sender.grant(bytes), 0));
    receiver.start();
    const sending = sender.send(data, new AbortController().signal);
    const received: Uint8Array[] = [];
    for await (const chunk of receiver) {
      outstanding -= chunk.length;
      received.push(chunk);
    }
    expect(await sending).toBe(true);
    const joined = new Uint8Array(data.length);
    let offset = 0;
    for (const chunk of received) {
      joined.set(chunk, offset);
      offset += chunk.length;
    }
    expect(joined).toEqual(data);
    expect(maxOutstanding).toBeLessThanOrEqual(1024 * 1024 + MAX_CHUNK_BYTES);
  });

  it('fails the stream on a chunk out of order or beyond the announced size', () => {
    const receiver = new ByteReceiver(10, () => undefined);
    expect(receiver.push({ id: 'a', sequence: 1, payload: new Uint8Array(1) })).toMatch(/expected/);
    const other = new ByteReceiver(2, () => undefined);
    expect(other.push({ id: 'a', sequence: 0, payload: new Uint8Array(3) })).toMatch(/more than the announced 2 bytes/);
  });

  it('stops sending when its signal aborts', async () => {
    const controller = new AbortController();
    const sender = new ByteSender('s', () => true);
    const sending = sender.send(new Uint8Array(10), controller.signal);
    controller.abort();
    expect(await sending).toBe(false);
  });
});
