/**
 * A stand-in relay for Workers-pool tests: opens the real /relay WebSocket through the Worker
 * (so the token check and upgrade are exercised) and exposes the frames it receives.
 */
import { SELF } from 'cloudflare:test';
import { PROTOCOL_VERSION, type HubFrame, type RelayFrame } from '../../shared/protocol.ts';

export const TEST_RELAY_TOKEN = 'test-relay-token-0123456789abcdef';
export const BASE_URL = 'http://127.0.0.1:8787';

export interface FakeRelay {
  socket: WebSocket;
  received: HubFrame[];
  closed: Promise<{ code: number; reason: string }>;
  send(frame: RelayFrame | string): void;
  next(predicate?: (frame: HubFrame) => boolean, timeoutMs?: number): Promise<HubFrame>;
}

export const FAKE_RELAY_ID = 'fake-relay';

export async function openRelaySocket(token: string | null = TEST_RELAY_TOKEN, relayId: string | null = FAKE_RELAY_ID): Promise<Response> {
  const headers: Record<string, string> = { Upgrade: 'websocket' };
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  if (relayId !== null) headers['X-Relay-Id'] = relayId;
  return SELF.fetch(`${BASE_URL}/relay`, { headers });
}

export interface FakeRelayOptions {
  hello?: boolean;
  hosts?: string[];
  protocol?: number;
  /** The token to present (default: the deployment token) and the name to send in X-Relay-Id (null: none). */
  token?: string;
  relayId?: string | null;
  /** The relay id its hello claims (default: relayId). */
  helloRelayId?: string;
}

export async function connectFakeRelay(options: FakeRelayOptions = {}): Promise<FakeRelay> {
  const response = await openRelaySocket(options.token ?? TEST_RELAY_TOKEN, options.relayId === undefined ? FAKE_RELAY_ID : options.relayId);
  const socket = response.webSocket;
  if (!socket) throw new Error(`no WebSocket (HTTP ${response.status})`);
  socket.accept();
  const received: HubFrame[] = [];
  const waiters: Array<() => void> = [];
  socket.addEventListener('message', (event) => {
    if (typeof event.data === 'string') received.push(JSON.parse(event.data) as HubFrame);
    for (const waiter of waiters.splice(0)) waiter();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.addEventListener('close', (event) => resolve({ code: event.code, reason: event.reason }));
  });
  const relay: FakeRelay = {
    socket,
    received,
    closed,
    send(frame) {
      socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
    },
    async next(predicate = () => true, timeoutMs = 5000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const index = received.findIndex(predicate);
        if (index >= 0) return received.splice(index, 1)[0] as HubFrame;
        if (Date.now() > until) throw new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(received)}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
    },
  };
  if (options.hello !== false) {
    relay.send({
      type: 'hello',
      protocol: options.protocol ?? PROTOCOL_VERSION,
      relayId: options.helloRelayId ?? options.relayId ?? FAKE_RELAY_ID,
      version: '0.0.0-test',
      hosts: (options.hosts ?? ['web1']).map((name) => ({ name, target: `root@${name}:22`, labels: { env: 'test' }, capabilities: ['exec'] })),
    });
    if ((options.protocol ?? PROTOCOL_VERSION) === PROTOCOL_VERSION) await relay.next((frame) => frame.type === 'welcome');
  }
  return relay;
}
