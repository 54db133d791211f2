/**
 * The relay hub's latest output line for progress notifications (RelayHub.latestLine): kept only
 * for a request started with latestLine, told only to the user whose request it is, bounded
 * whatever the relay sends, and gone when the request ends.
 */
import { env } from 'cloudflare:test';
import { afterEach, describe, expect, it } from 'vitest';
import { KEPT_LINE_CHARS, type LatestLine } from '../../shared/latest-line.ts';
import { relayHub } from '../../worker/relay/hub-stub.ts';
import type { RelayHub } from '../../worker/relay/relay-hub.ts';
import { execResult } from './hub-requests.ts';
import { connectFakeRelay, FAKE_RELAY_ID, type FakeRelay } from './relay-socket.ts';

let relay: FakeRelay | undefined;

afterEach(async () => {
  relay?.socket.close(1000, 'test done');
  relay = undefined;
});

function start(hub: DurableObjectStub<RelayHub>, id: string, userId: string, latestLine: boolean): Promise<unknown> {
  return hub.execute(id, { op: 'exec', host: 'web1', command: 'make', timeoutMs: 5000, maxChars: 100_000 }, 5000, {
    userId,
    maxChars: 100_000,
    ...(latestLine ? { latestLine: true } : {}),
  });
}

/** The line once the hub has taken in the frames sent before (bounded wait: frames arrive in order). */
async function lineOnceSeen(hub: DurableObjectStub<RelayHub>, id: string, userId: string, text: string): Promise<LatestLine | null> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const line = await hub.latestLine(id, userId);
    if (line?.text.startsWith(text)) return line;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return hub.latestLine(id, userId);
}

describe('relay hub latest output line', () => {
  it('tells the latest complete line of a request to its own user only, bounded, until the request ends', async () => {
    relay = await connectFakeRelay();
    const hub = relayHub(env, FAKE_RELAY_ID);
    const done = start(hub, 'line-1', 'alice', true);
    await relay.next((frame) => frame.type === 'request');
    relay.send({ type: 'output', id: 'line-1', stream: 'stdout', data: 'step 1\nstep 2 in progr' });
    expect(await lineOnceSeen(hub, 'line-1', 'alice', 'step 1')).toMatchObject({ stream: 'stdout', text: 'step 1', length: 6 });
    // Another user asking for the same id learns nothing, as for an id that does not exist.
    expect(await hub.latestLine('line-1', 'bob')).toBeNull();
    expect(await hub.latestLine('no-such-request', 'alice')).toBeNull();
    relay.send({ type: 'output', id: 'line-1', stream: 'stderr', data: `${'\u001b[31m'}${'e'.repeat(60_000)}\n` });
    const long = await lineOnceSeen(hub, 'line-1', 'alice', '\u001b[31m');
    expect(long).toMatchObject({ stream: 'stderr', length: 60_005 });
    expect(long?.text.length).toBe(KEPT_LINE_CHARS);
    relay.send({ type: 'result', id: 'line-1', result: execResult({}) });
    await done;
    expect(await hub.latestLine('line-1', 'alice')).toBeNull();
  });

  it('keeps no line for a request that did not ask for one (no progress token)', async () => {
    relay = await connectFakeRelay();
    const hub = relayHub(env, FAKE_RELAY_ID);
    const done = start(hub, 'line-2', 'alice', false);
    await relay.next((frame) => frame.type === 'request');
    relay.send({ type: 'output', id: 'line-2', stream: 'stdout', data: 'step 1\n' });
    relay.send({ type: 'output', id: 'line-2', stream: 'stdout', data: 'step 2\n' });
    // Once a later request's line is seen, the frames before it have been taken in too.
    const probe = start(hub, 'line-3', 'alice', true);
    await relay.next((frame) => frame.type === 'request' && frame.id === 'line-3');
    relay.send({ type: 'output', id: 'line-3', stream: 'stdout', data: 'marker\n' });
    expect(await lineOnceSeen(hub, 'line-3', 'alice', 'marker')).toMatchObject({ text: 'marker' });
    expect(await hub.latestLine('line-2', 'alice')).toBeNull();
    relay.send({ type: 'result', id: 'line-2', result: execResult({}) });
    relay.send({ type: 'result', id: 'line-3', result: execResult({}) });
    await Promise.all([done, probe]);
  });
});
