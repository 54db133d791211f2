/**
 * File bytes travel as binary WebSocket frames, never inside JSON:
 *   [0]      kind (1 = data chunk)
 *   [1]      length L of the request id (1–64)
 *   [2..2+L) request id, ASCII
 *   next 4   sequence number, uint32 big-endian (0, 1, 2, … per request and direction)
 *   rest     payload, at most MAX_CHUNK_BYTES
 * Flow control is by credit: the receiver of a byte stream sends `credit` frames (JSON) granting
 * the sender a number of bytes; a sender never has more than that outstanding. So neither side
 * buffers more than its window, and no frame comes near any platform limit.
 */
export const CHUNK_KIND = 1;
export const MAX_CHUNK_BYTES = 64 * 1024;
/** Bytes a receiver grants at a time. */
export const STREAM_WINDOW_BYTES = 1024 * 1024;

export interface Chunk {
  id: string;
  sequence: number;
  payload: Uint8Array;
}

export function encodeChunk(chunk: Chunk): Uint8Array {
  const id = new TextEncoder().encode(chunk.id);
  if (id.length < 1 || id.length > 64) throw new Error('chunk id must be 1-64 bytes');
  if (chunk.payload.length > MAX_CHUNK_BYTES) throw new Error(`chunk payload over ${MAX_CHUNK_BYTES} bytes`);
  const frame = new Uint8Array(2 + id.length + 4 + chunk.payload.length);
  frame[0] = CHUNK_KIND;
  frame[1] = id.length;
  frame.set(id, 2);
  new DataView(frame.buffer).setUint32(2 + id.length, chunk.sequence);
  frame.set(chunk.payload, 6 + id.length);
  return frame;
}

export type ChunkParse = { ok: true; chunk: Chunk } | { ok: false; reason: string };

export function decodeChunk(frame: Uint8Array): ChunkParse {
  if (frame.length < 7) return { ok: false, reason: 'binary frame too short' };
  if (frame[0] !== CHUNK_KIND) return { ok: false, reason: `unknown binary frame kind ${frame[0]}` };
  const idLength = frame[1] ?? 0;
  if (idLength < 1 || idLength > 64 || frame.length < 6 + idLength) return { ok: false, reason: 'bad request id length in binary frame' };
  const id = new TextDecoder().decode(frame.subarray(2, 2 + idLength));
  if (!/^[\x21-\x7e]+$/.test(id)) return { ok: false, reason: 'request id in binary frame is not printable ASCII' };
  const sequence = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(2 + idLength);
  const payload = frame.subarray(6 + idLength);
  if (payload.length > MAX_CHUNK_BYTES) return { ok: false, reason: `binary frame payload over ${MAX_CHUNK_BYTES} bytes` };
  return { ok: true, chunk: { id, sequence, payload } };
}
