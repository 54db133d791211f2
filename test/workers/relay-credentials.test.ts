/**
 * Relays with their own credentials: a token issued to one relay admits only that relay, under
 * its own name; the Worker keeps only the token's hash; a revoked credential is refused and its
 * live connection closed; the deployment token cannot stand in for a relay that has its own.
 */
import { env } from 'cloudflare:test';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../worker/auth/password-hash.ts';
import { newRelayToken, relayNameInToken } from '../../shared/relay-credential.ts';
import { issueRelayCredential } from '../../worker/admin/relay-actions.ts';
import { relayHub } from '../../worker/relay/hub-stub.ts';
import { teamDirectory } from '../../worker/team/team-directory.ts';
import { connectFakeRelay, openRelaySocket, type FakeRelay } from './relay-socket.ts';

const open: FakeRelay[] = [];

afterEach(() => {
  for (const relay of open.splice(0)) {
    try {
      relay.socket.close(1000, 'test over');
    } catch {
      // already closed
    }
  }
});

async function issue(name: string): Promise<string> {
  const token = newRelayToken(name);
  const issued = await teamDirectory(env).issueRelay(name, await sha256Hex(token));
  if (!issued.ok) throw new Error(issued.message);
  return token;
}

/** A relay connection admitted with `token` that has not said hello yet: its socket, the frames it gets, and how it closes. */
async function admittedSocket(token: string): Promise<{ socket: WebSocket; frames: string[]; closed: Promise<number> }> {
  const response = await openRelaySocket(token, null);
  const socket = response.webSocket;
  if (!socket) throw new Error(`no WebSocket (HTTP ${response.status})`);
  socket.accept();
  const frames: string[] = [];
  socket.addEventListener('message', (event) => frames.push(String(event.data)));
  const closed = new Promise<number>((resolve) => socket.addEventListener('close', (event) => resolve(event.code)));
  return { socket, frames, closed };
}

async function keep(relay: Promise<FakeRelay>): Promise<FakeRelay> {
  const connected = await relay;
  open.push(connected);
  return connected;
}

describe('issued relay credentials', () => {
  it('names the relay inside the token and stores only its hash', async () => {
    const token = await issue('site-a');
    expect(relayNameInToken(token)).toBe('site-a');
    const listed = await teamDirectory(env).listRelays();
    const record = listed.find((relay) => relay.name === 'site-a');
    expect(record).toMatchObject({ name: 'site-a', credential: 'issued' });
    expect(JSON.stringify(listed)).not.toContain(token.split(':')[1]);
    expect(JSON.stringify(listed)).not.toContain(await sha256Hex(token));
  });

  it('admits a relay with its own token, without X-Relay-Id, under its own hub', async () => {
    const token = await issue('site-b');
    const relay = await keep(connectFakeRelay({ token, relayId: null, helloRelayId: 'site-b', hosts: ['db1'] }));
    expect(relay.socket.readyState).toBe(WebSocket.OPEN);
    const state = await relayHub(env, 'site-b').inventory();
    expect(state).toMatchObject({ relayId: 'site-b', connected: true, hosts: [{ name: 'db1' }] });
    expect((await teamDirectory(env).listRelays()).find((entry) => entry.name === 'site-b')?.lastConnectedAt).toBeTruthy();
  });

  it('refuses a token whose secret is wrong, before the upgrade', async () => {
    await issue('site-c');
    const forged = newRelayToken('site-c');
    const response = await openRelaySocket(forged, null);
    expect(response.status).toBe(401);
    expect(response.webSocket).toBeNull();
    await response.body?.cancel();
  });

  it('refuses a relay whose X-Relay-Id disagrees with its token, saying which name to use', async () => {
    const token = await issue('site-d');
    const response = await openRelaySocket(token, 'other-name');
    expect(response.status).toBe(401);
    expect(await response.text()).toContain('RELAY_ID=site-d');
  });

  it('closes a relay whose hello claims another name than its credential (4004)', async () => {
    const token = await issue('site-e');
    const { socket, closed } = await admittedSocket(token);
    socket.send(JSON.stringify({ type: 'hello', protocol: 1, relayId: 'impostor', version: '0.0.0-test', hosts: [] }));
    expect(await closed).toBe(4004);
  });

  it('refuses the deployment token for a relay name that has its own credential', async () => {
    await issue('site-f');
    const response = await openRelaySocket(undefined, 'site-f');
    expect(response.status).toBe(401);
    expect(await response.text()).toContain('has its own credential');
  });

  it('revoking a credential refuses the next connection, and disconnect closes the live one (4010)', async () => {
    const token = await issue('site-g');
    const relay = await keep(connectFakeRelay({ token, relayId: null, helloRelayId: 'site-g' }));
    const revoked = await teamDirectory(env).revokeRelay('site-g');
    expect(revoked.ok).toBe(true);
    await relayHub(env, 'site-g').disconnect('credential revoked');
    expect((await relay.closed).code).toBe(4010);
    const again = await openRelaySocket(token, null);
    expect(again.status).toBe(401);
    expect(await again.text()).toContain('revoked');
    expect(await teamDirectory(env).relayNames()).not.toContain('site-g');
  });

  it('will not issue a second credential while one is live', async () => {
    await issue('site-h');
    const second = await teamDirectory(env).issueRelay('site-h', await sha256Hex(newRelayToken('site-h')));
    expect(second.ok === false && second.message).toContain('Revoke it first');
  });
});

describe('review fixes', () => {
  it('a connection that waited before saying hello cannot take over from the relay that did', async () => {
    const token = await issue('site-i');
    const { socket: lurkerSocket, closed: lurkerClosed } = await admittedSocket(token);
    const real = await keep(connectFakeRelay({ token, relayId: null, helloRelayId: 'site-i', hosts: ['db1'] }));
    lurkerSocket.send(
      JSON.stringify({
        type: 'hello',
        protocol: 1,
        relayId: 'site-i',
        version: '0.0.0-evil',
        hosts: [{ name: 'db1', target: 'x', labels: {}, capabilities: ['exec'] }],
      }),
    );
    expect(await lurkerClosed).toBe(4009);
    expect(real.socket.readyState).toBe(WebSocket.OPEN);
    expect(await relayHub(env, 'site-i').inventory()).toMatchObject({ version: '0.0.0-test' });
  });

  it('a relay revoked between its upgrade and its hello is refused at the hello (4010)', async () => {
    const token = await issue('site-l');
    const { socket, closed } = await admittedSocket(token);
    // Revoked in the directory only: the hub's disconnect() has not run for this socket.
    await teamDirectory(env).revokeRelay('site-l');
    socket.send(JSON.stringify({ type: 'hello', protocol: 1, relayId: 'site-l', version: '1', hosts: [] }));
    expect(await closed).toBe(4010);
    expect(await relayHub(env, 'site-l').inventory()).toBeNull();
  });

  it('issues the token under the spelling already on record, so the relay can connect', async () => {
    await teamDirectory(env).issueRelay('Site-J', await sha256Hex(newRelayToken('Site-J')));
    await teamDirectory(env).revokeRelay('Site-J');
    const issued = await issueRelayCredential(env, 'admin', { name: 'site-j' });
    expect(issued.ok && issued.token.startsWith('Site-J:')).toBe(true);
    if (!issued.ok) return;
    const relay = await keep(connectFakeRelay({ token: issued.token, relayId: null, helloRelayId: 'Site-J' }));
    expect(relay.socket.readyState).toBe(WebSocket.OPEN);
  });

  it('refuses a hello whose host names contain "/" (reserved for relay/host)', async () => {
    const token = await issue('site-k');
    const { socket, frames } = await admittedSocket(token);
    socket.send(
      JSON.stringify({
        type: 'hello',
        protocol: 1,
        relayId: 'site-k',
        version: '1',
        hosts: [{ name: 'other/prod', target: 'x', labels: {}, capabilities: ['exec'] }],
      }),
    );
    for (let i = 0; i < 40 && frames.length === 0; i += 1) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(frames.join('')).toContain('protocol_error');
    expect(await relayHub(env, 'site-k').inventory()).toBeNull();
    socket.close(1000, 'done');
  });
});

describe('the deployment token', () => {
  it('needs the relay to name itself', async () => {
    const response = await openRelaySocket(undefined, null);
    expect(response.status).toBe(400);
    expect(await response.text()).toContain('X-Relay-Id');
  });

  it('records a relay it admits, so its hosts count', async () => {
    await keep(connectFakeRelay({ relayId: 'lan-box', hosts: ['nas'] }));
    const relays = await teamDirectory(env).listRelays();
    expect(relays.find((relay) => relay.name === 'lan-box')).toMatchObject({ credential: 'deployment' });
    expect(await teamDirectory(env).relayNames()).toContain('lan-box');
  });
});
