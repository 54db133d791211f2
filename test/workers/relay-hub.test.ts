import { env } from 'cloudflare:test';
import { afterEach, describe, expect, it } from 'vitest';
import { relayHub } from '../../worker/relay/hub-stub.ts';
import { execOn, execResult } from './hub-requests.ts';
import { connectFakeRelay, FAKE_RELAY_ID, openRelaySocket, type FakeRelay } from './relay-socket.ts';

let relay: FakeRelay | undefined;

afterEach(async () => {
  relay?.socket.close(1000, 'test done');
  relay = undefined;
});

const execRequest = { command: 'uptime', timeoutMs: 5000, maxChars: 100 };

describe('relay authentication', () => {
  it('refuses a missing token before upgrading', async () => {
    const response = await openRelaySocket(null);
    expect(response.status).toBe(401);
    expect(response.webSocket).toBeNull();
    await response.body?.cancel();
  });

  it('refuses a wrong token before upgrading', async () => {
    const response = await openRelaySocket('wrong-token-wrong-token-wrong');
    expect(response.status).toBe(401);
    expect(response.webSocket).toBeNull();
    await response.body?.cancel();
  });

  it('accepts the right token and welcomes a relay that says hello', async () => {
    relay = await connectFakeRelay();
    expect(relay.socket.readyState).toBe(WebSocket.OPEN);
  });
});

describe('relay hub', () => {
  it('says no relay is connected when none ever was', async () => {
    const hub = env.RELAY_HUB.get(env.RELAY_HUB.idFromName('never-used'));
    const outcome = await hub.execute('x1', { op: 'ping' }, 1000);
    expect(outcome.ok === false && outcome.error.code).toBe('relay_not_connected');
  });

  it('correlates a request with its streamed output and result', async () => {
    relay = await connectFakeRelay();
    const pending = execOn(relayHub(env, FAKE_RELAY_ID), 'req-1', execRequest);
    const request = await relay.next((frame) => frame.type === 'request');
    expect(request).toMatchObject({ type: 'request', id: 'req-1', operation: { op: 'exec', host: 'web1', command: 'uptime' } });
    relay.send({ type: 'output', id: 'req-1', stream: 'stdout', data: 'up 3 days\n' });
    relay.send({ type: 'output', id: 'req-1', stream: 'stderr', data: 'warn\n' });
    relay.send({
      type: 'result',
      id: 'req-1',
      result: execResult({ exitCode: 0, cancelled: false, stdoutBytes: 10, stderrBytes: 5, stdoutTruncated: false }),
    });
    const outcome = await pending;
    expect(outcome.ok).toBe(true);
    if (outcome.ok) expect(outcome.value).toMatchObject({ stdout: 'up 3 days\n', stderr: 'warn\n', result: { exitCode: 0 } });
  });

  it('keeps no more output than the caller asked for, whatever the relay sends', async () => {
    relay = await connectFakeRelay();
    const pending = execOn(relayHub(env, FAKE_RELAY_ID), 'req-cap', { ...execRequest, maxChars: 5 });
    await relay.next((frame) => frame.type === 'request');
    relay.send({ type: 'output', id: 'req-cap', stream: 'stdout', data: '0123456789' });
    relay.send({
      type: 'result',
      id: 'req-cap',
      result: execResult({ exitCode: 0, cancelled: false, stdoutBytes: 10, stderrBytes: 0, stdoutTruncated: true }),
    });
    const outcome = await pending;
    expect(outcome.ok && outcome.value.stdout).toBe('01234');
  });

  it('passes a relay error through with its code', async () => {
    relay = await connectFakeRelay();
    const pending = execOn(relayHub(env, FAKE_RELAY_ID), 'req-2', execRequest);
    await relay.next((frame) => frame.type === 'request');
    relay.send({ type: 'error', id: 'req-2', code: 'auth_failed', message: 'Authentication as "root" failed.' });
    const outcome = await pending;
    expect(outcome.ok === false && outcome.error).toEqual({ code: 'auth_failed', message: 'Authentication as "root" failed.' });
  });

  it('fails requests in flight at once when the relay disconnects, and does not resend them', async () => {
    relay = await connectFakeRelay();
    const pending = execOn(relayHub(env, FAKE_RELAY_ID), 'req-3', execRequest);
    await relay.next((frame) => frame.type === 'request');
    relay.socket.close(1001, 'relay going away');
    const outcome = await pending;
    expect(outcome.ok === false && outcome.error.code).toBe('relay_disconnected');
    const again = await connectFakeRelay();
    relay = again;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(again.received.filter((frame) => frame.type === 'request')).toEqual([]);
  });

  it('forwards a cancel for a request in flight', async () => {
    relay = await connectFakeRelay();
    const hub = relayHub(env, FAKE_RELAY_ID);
    const pending = execOn(hub, 'req-4', execRequest);
    await relay.next((frame) => frame.type === 'request');
    await hub.cancel('req-4');
    expect(await relay.next((frame) => frame.type === 'cancel')).toEqual({ type: 'cancel', id: 'req-4' });
    relay.send({
      type: 'result',
      id: 'req-4',
      result: execResult({ exitCode: null, cancelled: true, stdoutBytes: 0, stderrBytes: 0, stdoutTruncated: false }),
    });
    const outcome = await pending;
    expect(outcome.ok && outcome.value.result.op === 'exec' && outcome.value.result.cancelled).toBe(true);
  });

  it('refuses a host its relay does not serve before anything reaches the relay', async () => {
    relay = await connectFakeRelay({ hosts: ['web1', 'db1'] });
    const hub = relayHub(env, FAKE_RELAY_ID);
    const unknown = await execOn(hub, 'req-6', { ...execRequest, host: 'mail1' });
    expect(unknown.ok === false && unknown.error.code).toBe('host_not_configured');
    expect(unknown.ok === false && unknown.error.message).toMatch(/does not serve a host "mail1"/);
    // A name differing only in case, or carrying a relay prefix, is not the host either.
    for (const host of ['WEB1', 'fake-relay/web1']) {
      const other = await execOn(hub, crypto.randomUUID(), { ...execRequest, host });
      expect(other.ok === false && other.error.code).toBe('host_not_configured');
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(relay.received.filter((frame) => frame.type === 'request')).toEqual([]);
    // A host it serves goes through.
    const served = execOn(hub, 'req-db1', { ...execRequest, host: 'db1' });
    expect(await relay.next((frame) => frame.type === 'request')).toMatchObject({ id: 'req-db1', operation: { host: 'db1' } });
    relay.send({ type: 'result', id: 'req-db1', result: execResult({}) });
    expect((await served).ok).toBe(true);
  });

  it('rejects an invalid frame with a protocol error and keeps the connection', async () => {
    relay = await connectFakeRelay();
    relay.send('{"type":"result","id":"zzz","result":{"op":"exec"}}');
    const error = await relay.next((frame) => frame.type === 'error');
    expect(error).toMatchObject({ type: 'error', code: 'protocol_error' });
    expect(relay.socket.readyState).toBe(WebSocket.OPEN);
  });

  it('refuses a relay speaking another protocol version', async () => {
    relay = await connectFakeRelay({ protocol: 99 });
    const error = await relay.next((frame) => frame.type === 'error');
    expect(error).toMatchObject({ code: 'version_mismatch' });
    expect((await relay.closed).code).toBe(4000);
  });

  it('closes a socket that sends work frames before hello', async () => {
    relay = await connectFakeRelay({ hello: false });
    relay.send({ type: 'output', id: 'a', stream: 'stdout', data: 'x' });
    expect((await relay.closed).code).toBe(4003);
  });

  it('refuses a second connection with the same identity while the first is alive; the first keeps working', async () => {
    relay = await connectFakeRelay();
    const second = await openRelaySocket();
    expect(second.status).toBe(409);
    expect(await second.text()).toMatch(/already connected.*does not take over/s);
    const pending = execOn(relayHub(env, FAKE_RELAY_ID), 'req-first', execRequest);
    await relay.next((frame) => frame.type === 'request');
    relay.send({ type: 'result', id: 'req-first', result: execResult({}) });
    expect((await pending).ok).toBe(true);
  });

  it('lets a relay back in once its previous connection has closed', async () => {
    const old = await connectFakeRelay();
    old.socket.close(1001, 'restarting');
    await old.closed;
    relay = await connectFakeRelay();
    const pending = execOn(relayHub(env, FAKE_RELAY_ID), 'req-new', execRequest);
    await relay.next((frame) => frame.type === 'request');
    relay.send({ type: 'result', id: 'req-new', result: execResult({}) });
    expect((await pending).ok).toBe(true);
  });

  it('honours a cancel that arrives before its request, and sends nothing to the relay', async () => {
    relay = await connectFakeRelay();
    const hub = relayHub(env, FAKE_RELAY_ID);
    await hub.cancel('req-early');
    const outcome = await execOn(hub, 'req-early', execRequest);
    expect(outcome.ok === false && outcome.error.code).toBe('cancelled');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(relay.received.filter((frame) => frame.type === 'request')).toEqual([]);
  });

  it('answers heartbeats', async () => {
    relay = await connectFakeRelay();
    relay.send('{"type":"ping"}');
    expect(await relay.next((frame) => frame.type === 'pong')).toEqual({ type: 'pong' });
  });

  it('lists the inventory with the relay state', async () => {
    relay = await connectFakeRelay({ hosts: ['web1'] });
    const state = await relayHub(env, FAKE_RELAY_ID).inventory();
    expect(state).toMatchObject({
      relayId: 'fake-relay',
      connected: true,
      version: '0.0.0-test',
      hosts: [{ name: 'web1', labels: { env: 'test' } }],
    });
  });
});
