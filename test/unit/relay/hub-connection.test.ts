import { createServer } from 'node:net';
import { testHostConfig } from '../../harness/host-config.ts';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { MAX_FRAME_CHARS, parseRelayFrame, PROTOCOL_VERSION, type RelayFrame } from '../../../shared/protocol.ts';
import { backoffDelay, frameText, HubConnection, relayEndpoint } from '../../../relay/hub-connection.ts';
import { RelayOperations } from '../../../relay/operations.ts';

process.env.LOG_LEVEL = 'error';

interface Hub {
  server: WebSocketServer;
  url: string;
  sockets: WebSocket[];
  frames: RelayFrame[];
  headers: string[];
}

let hub: Hub;
let connection: HubConnection | undefined;

async function startHub(onFrame: (socket: WebSocket, frame: RelayFrame) => void = welcomeOnHello): Promise<Hub> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const state: Hub = { server, url: `http://127.0.0.1:${port}`, sockets: [], frames: [], headers: [] };
  server.on('connection', (socket, request) => {
    state.sockets.push(socket);
    state.headers.push(request.headers.authorization ?? '');
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as RelayFrame;
      state.frames.push(frame);
      onFrame(socket, frame);
    });
  });
  return state;
}

function welcomeOnHello(socket: WebSocket, frame: RelayFrame): void {
  if (frame.type === 'hello') socket.send(JSON.stringify({ type: 'welcome', protocol: PROTOCOL_VERSION, maxOutputChunkChars: 65536 }));
  if (frame.type === 'ping') socket.send('{"type":"pong"}');
}

function startRelay(
  options: { heartbeatMs?: number; healthyAfterMs?: number; onReconnectScheduled?: (attempt: number, delayMs: number) => void } = {},
): HubConnection {
  const operations = new RelayOperations({
    relayId: 'unit',
    relayIdExplicit: true,
    hosts: [],
    knownHostsFiles: [],
    recordKnownHostsFile: '/nonexistent',
    stateDir: '/nonexistent-state',
    source: 'test',
  });
  connection = new HubConnection({
    url: hub.url,
    token: 'secret-token',
    relayId: 'unit',
    operations,
    backoff: { baseMs: 20, capMs: 100, healthyAfterMs: options.healthyAfterMs ?? 60_000 },
    ...(options.heartbeatMs !== undefined ? { heartbeatMs: options.heartbeatMs } : {}),
    ...(options.onReconnectScheduled ? { onReconnectScheduled: options.onReconnectScheduled } : {}),
  });
  connection.start();
  return connection;
}

async function until(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const hellos = (): number => hub.frames.filter((frame) => frame.type === 'hello').length;

beforeEach(async () => {
  hub = await startHub();
});

afterEach(async () => {
  await connection?.shutdown(0);
  connection = undefined;
  for (const socket of hub.sockets) socket.terminate();
  await new Promise<void>((resolve) => hub.server.close(() => resolve()));
});

describe('backoffDelay', () => {
  const settings = { baseMs: 500, capMs: 30_000, healthyAfterMs: 60_000 };
  it('draws uniformly between zero and the exponential ceiling (full jitter)', () => {
    expect(backoffDelay(0, settings, () => 0)).toBe(0);
    expect(backoffDelay(0, settings, () => 0.999)).toBe(499);
    expect(backoffDelay(3, settings, () => 0.5)).toBe(2000);
  });
  it('never exceeds the cap, however many attempts failed', () => {
    expect(backoffDelay(50, settings, () => 0.999_999)).toBeLessThan(30_000);
  });
});

describe('frameText', () => {
  it('sends an answer that fits a frame as it is', () => {
    const frame: RelayFrame = { type: 'error', id: 'a1', code: 'path_not_found', message: 'No such file: /x' };
    expect(JSON.parse(frameText(frame))).toEqual(frame);
  });

  it('turns an answer too large for a frame into a valid error for the same request', () => {
    const entries = Array.from({ length: 1000 }, (_, index) => ({
      path: `/${'d'.repeat(2000)}/${index}`,
      type: 'file' as const,
      size: 1,
      mode: '644',
      mtime: '2026-01-01T00:00:00Z',
    }));
    const text = frameText({ type: 'result', id: 'big-1', result: { op: 'list_directory', path: '/', entries, truncated: false } });
    expect(text.length).toBeLessThanOrEqual(MAX_FRAME_CHARS);
    const parsed = parseRelayFrame(text);
    expect(parsed.ok && parsed.frame).toMatchObject({ type: 'error', id: 'big-1', code: 'protocol_error' });
  });
});

describe('relayEndpoint', () => {
  it('turns the Worker URL into its /relay WebSocket URL', () => {
    expect(relayEndpoint('https://mcp.example.com')).toBe('wss://mcp.example.com/relay');
    expect(relayEndpoint('http://127.0.0.1:8787/')).toBe('ws://127.0.0.1:8787/relay');
    expect(relayEndpoint('wss://mcp.example.com/custom')).toBe('wss://mcp.example.com/custom');
  });
  it('refuses other schemes', () => {
    expect(() => relayEndpoint('ftp://example.com')).toThrow(/RELAY_URL must start with/);
  });
});

describe('HubConnection', () => {
  it('sends its token in the upgrade and says hello with its inventory', async () => {
    const relay = startRelay();
    await relay.whenWelcomed();
    expect(hub.headers[0]).toBe('Bearer secret-token');
    expect(hub.frames[0]).toMatchObject({ type: 'hello', protocol: PROTOCOL_VERSION, relayId: 'unit', hosts: [] });
  });

  it('answers a request with a result carrying the same id', async () => {
    const relay = startRelay();
    await relay.whenWelcomed();
    hub.sockets[0]?.send(JSON.stringify({ type: 'request', id: 'p1', deadlineMs: 1000, operation: { op: 'ping' } }));
    await until(() => hub.frames.some((frame) => frame.type === 'result'));
    expect(hub.frames.find((frame) => frame.type === 'result')).toMatchObject({ id: 'p1', result: { op: 'ping' } });
  });

  it('reconnects after the hub drops the connection', async () => {
    const relay = startRelay();
    await relay.whenWelcomed();
    hub.sockets[0]?.terminate();
    await until(() => hellos() >= 2);
    expect(hub.sockets).toHaveLength(2);
  });

  it('backs off further after each connection that dies young, and starts over after a healthy one', async () => {
    const dropAfterWelcome = async (healthyAfterMs: number): Promise<number[]> => {
      const attempts: number[] = [];
      // Pongs every few milliseconds: "healthy" counts the time the hub kept answering.
      const relay = startRelay({ healthyAfterMs, heartbeatMs: 20, onReconnectScheduled: (attempt) => attempts.push(attempt) });
      for (let drop = 0; drop < 3; drop += 1) {
        await relay.whenWelcomed();
        await new Promise((resolve) => setTimeout(resolve, 30));
        hub.sockets.at(-1)?.terminate();
        await until(() => attempts.length > drop);
      }
      await relay.shutdown(0);
      connection = undefined;
      return attempts;
    };
    expect(await dropAfterWelcome(60_000)).toEqual([1, 2, 3]);
    expect(await dropAfterWelcome(10)).toEqual([0, 0, 0]);
  });

  it('drops a half-open connection whose heartbeats go unanswered, then reconnects', async () => {
    await new Promise<void>((resolve) => hub.server.close(() => resolve()));
    hub = await startHub((socket, frame) => {
      if (frame.type === 'hello') socket.send(JSON.stringify({ type: 'welcome', protocol: PROTOCOL_VERSION, maxOutputChunkChars: 65536 }));
      // Never answers pings: the socket looks open but nobody is there.
    });
    startRelay({ heartbeatMs: 40 });
    await until(() => hellos() >= 2, 3000);
  });

  it('pings several times per heartbeat interval and gives up on a silent hub before two intervals pass', async () => {
    await new Promise<void>((resolve) => hub.server.close(() => resolve()));
    hub = await startHub((socket, frame) => {
      if (frame.type === 'hello') socket.send(JSON.stringify({ type: 'welcome', protocol: PROTOCOL_VERSION, maxOutputChunkChars: 65536 }));
    });
    const heartbeatMs = 200;
    let pings = 0;
    hub.server.on('connection', (socket) => {
      if (hub.sockets.length !== 1) return;
      socket.on('message', (data) => {
        if ((JSON.parse(data.toString()) as RelayFrame).type === 'ping') pings += 1;
      });
    });
    startRelay({ heartbeatMs });
    await until(() => hellos() >= 2, 3000);
    // Counted in ticks, not in wall-clock time: a tick every quarter interval pings until 1.5
    // intervals of silence, so at least 4 pings, and it gave up at the first tick past 1.5
    // intervals (no more than 6 pings), well within two intervals.
    expect(pings).toBeGreaterThanOrEqual(4);
    expect(pings).toBeLessThanOrEqual(6);
  });

  it('keeps a connection whose hub sends other frames even when no pong comes', async () => {
    await new Promise<void>((resolve) => hub.server.close(() => resolve()));
    hub = await startHub((socket, frame) => {
      if (frame.type === 'hello') socket.send(JSON.stringify({ type: 'welcome', protocol: PROTOCOL_VERSION, maxOutputChunkChars: 65536 }));
    });
    const relay = startRelay({ heartbeatMs: 60 });
    await relay.whenWelcomed();
    // Credits for a request the relay does not know: harmless, but proof the hub is there.
    const keepAlive = setInterval(() => hub.sockets[0]?.send(JSON.stringify({ type: 'credit', id: 'none', bytes: 1 })), 10);
    await new Promise((resolve) => setTimeout(resolve, 600));
    clearInterval(keepAlive);
    expect(hellos()).toBe(1);
    await until(() => hellos() >= 2, 3000);
  });

  it('starts the backoff over from the shortest delay after a healthy connection, even one that ended half-open', async () => {
    let answering = true;
    await new Promise<void>((resolve) => hub.server.close(() => resolve()));
    hub = await startHub((socket, frame) => {
      if (frame.type === 'hello') socket.send(JSON.stringify({ type: 'welcome', protocol: PROTOCOL_VERSION, maxOutputChunkChars: 65536 }));
      if (frame.type === 'ping' && answering) socket.send('{"type":"pong"}');
    });
    const scheduled: Array<{ attempt: number; delayMs: number }> = [];
    const relay = startRelay({ heartbeatMs: 40, healthyAfterMs: 150, onReconnectScheduled: (attempt, delayMs) => scheduled.push({ attempt, delayMs }) });
    // Two connections that die young: the backoff grows.
    for (let drop = 0; drop < 2; drop += 1) {
      await relay.whenWelcomed();
      hub.sockets.at(-1)?.terminate();
      await until(() => scheduled.length > drop);
    }
    expect(scheduled.map((entry) => entry.attempt)).toEqual([1, 2]);
    // The third works for a while, then the hub goes silent (half-open).
    await relay.whenWelcomed();
    await new Promise((resolve) => setTimeout(resolve, 300));
    answering = false;
    await until(() => scheduled.length > 2);
    expect(scheduled[2]?.attempt).toBe(0);
    // The shortest ceiling is baseMs (20 here).
    expect(scheduled[2]?.delayMs).toBeLessThan(20);
  });

  it('ignores an invalid frame and keeps working', async () => {
    const relay = startRelay();
    await relay.whenWelcomed();
    hub.sockets[0]?.send('{"type":"request","id":"x"}');
    hub.sockets[0]?.send(JSON.stringify({ type: 'request', id: 'p2', deadlineMs: 1000, operation: { op: 'ping' } }));
    await until(() => hub.frames.some((frame) => frame.type === 'result'));
    expect(hub.frames.filter((frame) => frame.type === 'result' || frame.type === 'error').map((frame) => ('id' in frame ? frame.id : null))).toEqual(['p2']);
  });

  it('closes when the hub speaks another protocol version', async () => {
    await new Promise<void>((resolve) => hub.server.close(() => resolve()));
    const closes: number[] = [];
    hub = await startHub((socket, frame) => {
      if (frame.type === 'hello') socket.send(JSON.stringify({ type: 'welcome', protocol: PROTOCOL_VERSION + 1, maxOutputChunkChars: 65536 }));
    });
    hub.server.on('connection', (socket) => socket.on('close', (code) => closes.push(code)));
    startRelay();
    await until(() => closes.length > 0);
    expect(closes[0]).toBe(4000);
  });

  it('finishes requests in flight on shutdown but refuses new ones', async () => {
    // A TCP server that accepts and never speaks SSH keeps a probe busy until its timeout.
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    const address = silent.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const operations = new RelayOperations({
      relayId: 'unit',
      relayIdExplicit: true,
      hosts: [
        testHostConfig({
          name: 'silent',
          address: '127.0.0.1',
          port,
          username: 'u',
          auth: { kind: 'password', password: 'p' },
          maxConnections: 1,
          connectTimeoutMs: 5000,
        }),
      ],
      knownHostsFiles: [],
      recordKnownHostsFile: '/nonexistent',
      stateDir: '/nonexistent-state',
      source: 'test',
    });
    const relay = new HubConnection({ url: hub.url, token: 'secret-token', relayId: 'unit', operations });
    relay.start();
    await relay.whenWelcomed();
    const socket = hub.sockets[0];
    socket?.send(JSON.stringify({ type: 'request', id: 'busy', deadlineMs: 5000, operation: { op: 'probe', hosts: [], timeoutMs: 400 } }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const stopping = relay.shutdown(5000);
    socket?.send(JSON.stringify({ type: 'request', id: 'late', deadlineMs: 1000, operation: { op: 'ping' } }));
    await stopping;
    silent.close();
    const answers = hub.frames.filter((frame) => frame.type === 'error' || frame.type === 'result');
    expect(answers.find((frame) => 'id' in frame && frame.id === 'late')).toMatchObject({ type: 'error', code: 'relay_shutting_down' });
    expect(answers.find((frame) => 'id' in frame && frame.id === 'busy')).toMatchObject({
      type: 'result',
      result: { op: 'probe', hosts: [{ name: 'silent', reachable: false, code: 'host_unreachable' }] },
    });
  });
});
