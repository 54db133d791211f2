/**
 * The team directory's copy of each relay's hosts, which lets a tool call read the caller's
 * standing and the fleet in one Durable Object call: the hub pushes the hosts before it welcomes
 * the relay, so the copy is current the moment the relay is in; a revoked relay leaves it at once;
 * and the admin listing of relays does not carry it.
 */
import { env } from 'cloudflare:test';
import { afterEach, describe, expect, it } from 'vitest';
import { teamDirectory } from '../../worker/team/team-directory.ts';
import { connectFakeRelay, FAKE_RELAY_ID, type FakeRelay } from './relay-socket.ts';

let relay: FakeRelay | undefined;

afterEach(async () => {
  relay?.socket.close(1000, 'test done');
  relay = undefined;
});

async function fleetHostsOf(relayId: string): Promise<string[] | null | undefined> {
  const access = await teamDirectory(env).access('nobody-in-particular');
  const entry = access.fleet.find((candidate) => candidate.relayId === relayId);
  return entry === undefined ? undefined : entry.hosts === null ? null : entry.hosts.map((host) => host.name);
}

describe("the team directory's copy of the fleet", () => {
  it('holds the hosts a relay reported as soon as the hub has welcomed it, and the new ones after it comes back with others', async () => {
    relay = await connectFakeRelay({ hosts: ['web1', 'db1'] });
    expect(await fleetHostsOf(FAKE_RELAY_ID)).toEqual(['web1', 'db1']);
    relay.socket.close(1000, 'restarting');
    await relay.closed;
    relay = await connectFakeRelay({ hosts: ['mail1'] });
    expect(await fleetHostsOf(FAKE_RELAY_ID)).toEqual(['mail1']);
  });

  it('drops a revoked relay at once, and keeps the hosts out of the admin listing', async () => {
    relay = await connectFakeRelay({ hosts: ['web1'] });
    expect((await teamDirectory(env).listRelays()).find((entry) => entry.name === FAKE_RELAY_ID)).not.toHaveProperty('hosts');
    await teamDirectory(env).revokeRelay(FAKE_RELAY_ID);
    expect(await fleetHostsOf(FAKE_RELAY_ID)).toBeUndefined();
  });
});
