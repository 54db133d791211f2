/**
 * The hub against a relay that misbehaves or a user who floods it: per-user shares of the
 * in-flight slots, answers that do not fit a frame, invalid frames, a second hello, frames for
 * requests not in flight, and a refused duplicate connection.
 */
import { env } from 'cloudflare:test';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_FRAME_CHARS } from '../../shared/protocol.ts';
import { relayHub } from '../../worker/relay/hub-stub.ts';
import { execOn, execResult, probeOn, readOn } from './hub-requests.ts';
import { MAX_INVALID_FRAMES } from '../../worker/relay/relay-hub.ts';
import { USER_PENDING_SHARE } from '../../worker/relay/relay-requests.ts';
import { teamDirectory } from '../../worker/team/team-directory.ts';
import { connectFakeRelay, FAKE_RELAY_ID, openRelaySocket, type FakeRelay } from './relay-socket.ts';

let relay: FakeRelay | undefined;

afterEach(async () => {
  relay?.socket.close(1000, 'test done');
  relay = undefined;
  vi.restoreAllMocks();
});

const execRequest = { command: 'uptime', timeoutMs: 5000, maxChars: 100 };

async function settle(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 100));
}

describe('per-user share of the in-flight slots', () => {
  it('refuses a user past their share, naming them, the relay and the share, while another user still gets through', async () => {
    relay = await connectFakeRelay();
    const hub = relayHub(env, FAKE_RELAY_ID);
    const flood = Array.from({ length: USER_PENDING_SHARE }, (_, index) => execOn(hub, `alice-${index}`, execRequest, 'user-alice'));
    // All of alice's share reached the relay (nobody answers them yet).
    for (let count = 0; count < USER_PENDING_SHARE; count += 1) await relay.next((frame) => frame.type === 'request');
    const refused = await execOn(hub, 'alice-over', execRequest, 'user-alice');
    expect(refused.ok).toBe(false);
    if (!refused.ok) {
      expect(refused.error.code).toBe('relay_busy');
      expect(refused.error.message).toContain(`You already have ${USER_PENDING_SHARE} requests in flight on relay "${FAKE_RELAY_ID}"`);
      expect(refused.error.message).toMatch(/your share/);
      expect(refused.error.message).toMatch(/Other users are unaffected/);
    }
    const bob = execOn(hub, 'bob-1', execRequest, 'user-bob');
    const request = await relay.next((frame) => frame.type === 'request' && frame.id === 'bob-1');
    expect(request).toMatchObject({ id: 'bob-1' });
    relay.send({
      type: 'result',
      id: 'bob-1',
      result: execResult({}),
    });
    expect((await bob).ok).toBe(true);
    // Alice's slots come back when her requests end.
    relay.socket.close(1001, 'done');
    const ended = await Promise.all(flood);
    expect(new Set(ended.map((outcome) => (outcome.ok ? 'ok' : outcome.error.code)))).toEqual(new Set(['relay_disconnected']));
  });
});

describe("a host check (ssh_list_hosts check=true) counts against the caller's share", () => {
  it("refuses a user's probes past their share while another user's probe still reaches the relay", async () => {
    relay = await connectFakeRelay();
    const hub = relayHub(env, FAKE_RELAY_ID);
    // Probes that the relay never answers (a host that does not answer holds each for PROBE_TIMEOUT_MS).
    const flood = Array.from({ length: USER_PENDING_SHARE }, () => probeOn(hub, crypto.randomUUID(), 'user-alice'));
    for (let count = 0; count < USER_PENDING_SHARE; count += 1) await relay.next((frame) => frame.type === 'request');
    const over = await probeOn(hub, crypto.randomUUID(), 'user-alice');
    expect(over.ok === false && over.error.code).toBe('relay_busy');
    expect(over.ok === false && over.error.message).toMatch(/your share/);
    const bobId = crypto.randomUUID();
    const bob = probeOn(hub, bobId, 'user-bob');
    const request = await relay.next((frame) => frame.type === 'request' && frame.id === bobId, 2000);
    expect(request).toMatchObject({ id: bobId, caller: 'user-bob' });
    relay.send({ type: 'result', id: bobId, result: { op: 'probe', hosts: [{ name: 'web1', reachable: true, latencyMs: 1 }] } });
    expect((await bob).ok).toBe(true);
    relay.socket.close(1001, 'done');
    await Promise.all(flood);
  });
});

describe('answers that do not fit', () => {
  it('fails the request at once when its answer is larger than a frame', async () => {
    relay = await connectFakeRelay();
    const pending = execOn(relayHub(env, FAKE_RELAY_ID), 'req-huge', { ...execRequest, timeoutMs: 60_000 });
    await relay.next((frame) => frame.type === 'request');
    relay.send(JSON.stringify({ type: 'error', id: 'req-huge', code: 'path_not_found', message: `No such file: /${'p'.repeat(MAX_FRAME_CHARS)}` }));
    const outcome = await pending;
    expect(outcome.ok === false && outcome.error.code).toBe('protocol_error');
  });

  it('fails the request at once when its answer breaks the schema (a message over the limit)', async () => {
    relay = await connectFakeRelay();
    const pending = readOn(relayHub(env, FAKE_RELAY_ID), 'req-long', { host: 'web1', path: '/x', offset: 0, length: 10, maxBytes: 10 }, 'user-alice');
    await relay.next((frame) => frame.type === 'request');
    relay.send(JSON.stringify({ type: 'error', id: 'req-long', code: 'path_not_found', message: `No such file: /${'p'.repeat(5000)}` }));
    const outcome = await pending;
    expect(outcome.ok === false && outcome.error.code).toBe('protocol_error');
    expect(outcome.ok === false && outcome.error.message).toMatch(/not a valid frame/);
  });

  it('leaves other requests alone when an invalid frame names an id that is not theirs', async () => {
    relay = await connectFakeRelay();
    const hub = relayHub(env, FAKE_RELAY_ID);
    const pending = execOn(hub, 'req-kept', execRequest);
    await relay.next((frame) => frame.type === 'request');
    relay.send(JSON.stringify({ type: 'error', id: 'someone-else', code: 'ssh_error', message: 'x'.repeat(5000) }));
    await relay.next((frame) => frame.type === 'error');
    relay.send({ type: 'error', id: 'req-kept', code: 'ssh_error', message: 'fine' });
    expect(await pending).toEqual({ ok: false, error: { code: 'ssh_error', message: 'fine' } });
  });
});

describe('answers that break the schema, from a relay that does not bound them', () => {
  it(`fails each such request but does not drop the relay, even after ${MAX_INVALID_FRAMES} of them`, async () => {
    relay = await connectFakeRelay();
    const hub = relayHub(env, FAKE_RELAY_ID);
    for (let count = 0; count < MAX_INVALID_FRAMES + 2; count += 1) {
      const pending = readOn(hub, `req-old-${count}`, { host: 'web1', path: '/x', offset: 0, length: 10, maxBytes: 10 }, 'user-alice');
      await relay.next((frame) => frame.type === 'request');
      relay.send(JSON.stringify({ type: 'error', id: `req-old-${count}`, code: 'path_not_found', message: `No such file: /${'p'.repeat(5000)}` }));
      expect((await pending).ok === false).toBe(true);
    }
    expect(relay.socket.readyState).toBe(WebSocket.OPEN);
    const next = execOn(hub, 'req-after', execRequest, 'user-bob');
    await relay.next((frame) => frame.type === 'request' && frame.id === 'req-after');
    relay.send({ type: 'error', id: 'req-after', code: 'ssh_error', message: 'fine' });
    expect(await next).toEqual({ ok: false, error: { code: 'ssh_error', message: 'fine' } });
  });
});

describe('nonsense on the relay channel', () => {
  it(`keeps a connection after a few invalid frames and closes it with 1002 at the ${MAX_INVALID_FRAMES}th`, async () => {
    relay = await connectFakeRelay();
    for (let count = 1; count < MAX_INVALID_FRAMES; count += 1) relay.send('not json');
    for (let count = 1; count < MAX_INVALID_FRAMES; count += 1) await relay.next((frame) => frame.type === 'error');
    expect(relay.socket.readyState).toBe(WebSocket.OPEN);
    const pending = execOn(relayHub(env, FAKE_RELAY_ID), 'req-victim', execRequest);
    await relay.next((frame) => frame.type === 'request');
    relay.socket.send(new Uint8Array([1, 2, 3]));
    expect((await relay.closed).code).toBe(1002);
    const outcome = await pending;
    expect(outcome.ok === false && outcome.error.code).toBe('relay_disconnected');
  });

  it('refuses a second hello on a live connection and keeps the inventory of the first', async () => {
    relay = await connectFakeRelay({ hosts: ['web1'] });
    const hub = relayHub(env, FAKE_RELAY_ID);
    const before = await hub.inventory();
    relay.send({
      type: 'hello',
      protocol: 1,
      relayId: FAKE_RELAY_ID,
      version: '9.9.9',
      hosts: [{ name: 'evil', target: 'x@y:22', labels: {}, capabilities: ['exec'] }],
    });
    const error = await relay.next((frame) => frame.type === 'error');
    expect(error).toMatchObject({ code: 'protocol_error' });
    expect(JSON.stringify(error)).toMatch(/second hello/);
    expect(relay.received.some((frame) => frame.type === 'welcome')).toBe(false);
    const after = await hub.inventory();
    expect(after).toEqual(before);
    expect(after?.hosts.map((host) => host.name)).toEqual(['web1']);
  });

  it('refuses a second hello sent right behind the first, before the first was answered', async () => {
    relay = await connectFakeRelay({ hello: false });
    const hello = (hosts: string[]): void =>
      relay?.send({
        type: 'hello',
        protocol: 1,
        relayId: FAKE_RELAY_ID,
        version: '0.0.0-test',
        hosts: hosts.map((name) => ({ name, target: `root@${name}:22`, labels: {}, capabilities: ['exec'] })),
      });
    hello(['web1']);
    hello(['evil']);
    await relay.next((frame) => frame.type === 'welcome');
    expect(await relay.next((frame) => frame.type === 'error')).toMatchObject({ code: 'protocol_error' });
    expect((await relayHub(env, FAKE_RELAY_ID).inventory())?.hosts.map((host) => host.name)).toEqual(['web1']);
  });

  it("logs frames for requests that are not in flight with the relay's name, and bounds how many", async () => {
    const warnings: string[] = [];
    vi.spyOn(console, 'warn').mockImplementation((line: unknown) => {
      warnings.push(String(line));
    });
    relay = await connectFakeRelay();
    for (let count = 0; count < 50; count += 1) relay.send({ type: 'output', id: `ghost-${count}`, stream: 'stdout', data: 'boo' });
    relay.send({ type: 'credit', id: 'ghost-credit', bytes: 10 });
    await settle();
    const stray = warnings.filter((line) => line.includes('not in flight'));
    expect(stray.length).toBeGreaterThan(0);
    expect(stray.length).toBeLessThanOrEqual(10);
    expect(stray[0]).toContain(`"relayId":"${FAKE_RELAY_ID}"`);
    expect(stray[0]).toContain('"id":"ghost-0"');
    expect(relay.socket.readyState).toBe(WebSocket.OPEN);
  });

  it('does not touch the live relay\'s "last seen" record when it refuses a duplicate connection', async () => {
    relay = await connectFakeRelay();
    const lastSeen = async (): Promise<unknown> => ({
      directory: (await teamDirectory(env).listRelays()).find((entry) => entry.name === FAKE_RELAY_ID)?.lastConnectedAt,
      hub: await relayHub(env, FAKE_RELAY_ID).inventory(),
    });
    const before = await lastSeen();
    expect(before).toMatchObject({ hub: { connected: true } });
    // Timestamps have millisecond resolution: let the clock move on before the duplicate comes.
    await new Promise((resolve) => setTimeout(resolve, 20));
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const duplicate = await openRelaySocket();
      expect(duplicate.status).toBe(409);
      await duplicate.body?.cancel();
    }
    expect(await lastSeen()).toEqual(before);
  });
});
