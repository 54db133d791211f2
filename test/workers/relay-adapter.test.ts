/**
 * The Worker's protocol adapter against the real hub and a stand-in relay: a file read as a stream
 * (a transfer link's GET) ends cleanly only when the relay's result accounts for every byte of the
 * whole file; a file that changed or grew while it was read breaks the stream instead.
 */
import { env } from 'cloudflare:test';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeChunk } from '../../shared/binary-frames.ts';
import { RelayAdapter } from '../../worker/relay/relay-adapter.ts';
import { connectFakeRelay, FAKE_RELAY_ID, type FakeRelay } from './relay-socket.ts';

let relay: FakeRelay | undefined;

afterEach(async () => {
  relay?.socket.close(1000, 'test done');
  relay = undefined;
});

const route = { relay: FAKE_RELAY_ID, host: 'web1' };
const info = (size: number) => ({ path: '/srv/file', type: 'file' as const, size, mode: '0644', mtime: '2026-01-01T00:00:00Z' });

/** Serve one streamed read: `payload` as one chunk, then a result that reports `reported`. */
async function serveRead(fake: FakeRelay, payload: Uint8Array, reported: { bytes: number; size: number; eof: boolean }): Promise<void> {
  const request = await fake.next((frame) => frame.type === 'request');
  if (request.type !== 'request') throw new Error('expected a request');
  fake.socket.send(encodeChunk({ id: request.id, sequence: 0, payload }));
  fake.send({ type: 'result', id: request.id, result: { op: 'read_file', info: info(reported.size), offset: 0, bytes: reported.bytes, eof: reported.eof } });
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  return new Response(stream).text();
}

describe('reading a file as a stream through the adapter', () => {
  it('delivers the whole file and ends cleanly when the result accounts for every byte', async () => {
    relay = await connectFakeRelay();
    const adapter = new RelayAdapter(env, 'user-alice');
    const opened = adapter.readAsStream(route, { path: '/srv/file', maxBytes: 100 });
    await serveRead(relay, new TextEncoder().encode('hello'), { bytes: 5, size: 5, eof: true });
    const stream = await opened;
    expect(stream.ok).toBe(true);
    if (stream.ok) expect(await readAll(stream.value)).toBe('hello');
  });

  it('breaks the stream when the file changed size while it was read', async () => {
    relay = await connectFakeRelay();
    const adapter = new RelayAdapter(env, 'user-alice');
    const opened = adapter.readAsStream(route, { path: '/srv/file', maxBytes: 100 });
    await serveRead(relay, new TextEncoder().encode('hello'), { bytes: 5, size: 9, eof: true });
    const stream = await opened;
    expect(stream.ok).toBe(true);
    if (stream.ok) await expect(readAll(stream.value)).rejects.toThrow(/changed or grew/);
  });

  it('breaks the stream when the file grew past the limit while it was read', async () => {
    relay = await connectFakeRelay();
    const adapter = new RelayAdapter(env, 'user-alice');
    const opened = adapter.readAsStream(route, { path: '/srv/file', maxBytes: 4 });
    await serveRead(relay, new TextEncoder().encode('hello'), { bytes: 5, size: 5, eof: true });
    const stream = await opened;
    expect(stream.ok).toBe(true);
    if (stream.ok) await expect(readAll(stream.value)).rejects.toThrow(/grew past MAX_FILE_SIZE/);
  });

  it('refuses a host the relay does not serve, as an outcome, before anything reaches the relay', async () => {
    relay = await connectFakeRelay();
    const adapter = new RelayAdapter(env, 'user-alice');
    const opened = await adapter.readAsStream({ relay: FAKE_RELAY_ID, host: 'mail1' }, { path: '/srv/file', maxBytes: 4 });
    expect(opened.ok === false && opened.error.code).toBe('host_not_configured');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(relay.received.filter((frame) => frame.type === 'request')).toEqual([]);
  });
});
