import { describe, expect, it } from 'vitest';
import { fleetHosts, selectFleetHost, type RelayInventory } from '../../../../worker/team/fleet.ts';
import { newRelayToken, relayNameInToken } from '../../../../shared/relay-credential.ts';

const entry = (name: string, labels: Record<string, string> = {}) => ({ name, target: `root@${name}:22`, labels, capabilities: ['exec'] });
const relays: RelayInventory[] = [
  { relayId: 'site-a', connected: true, hosts: [entry('web'), entry('db')] },
  { relayId: 'site-b', connected: true, hosts: [entry('web'), entry('nas')] },
];

describe('host names across relays', () => {
  it('names a host by its own name when unique, and relay/host when two relays share the name', () => {
    expect(fleetHosts(relays).map((host) => host.id)).toEqual(['site-a/web', 'db', 'site-b/web', 'nas']);
  });

  it('counts only the hosts the caller can see when deciding whether a name is unique', () => {
    const visible = fleetHosts(relays, (relay, host) => !(relay === 'site-b' && host.name === 'web'));
    expect(visible.map((host) => host.id)).toEqual(['web', 'db', 'nas']);
  });

  it('picks a unique bare name, and relay/host always', () => {
    const hosts = fleetHosts(relays);
    expect(selectFleetHost(hosts, 'db')).toMatchObject({ ok: true, value: { relay: 'site-a', id: 'db' } });
    expect(selectFleetHost(hosts, 'site-a/db')).toMatchObject({ ok: true, value: { relay: 'site-a', id: 'db' } });
    expect(selectFleetHost(hosts, 'site-b/web')).toMatchObject({ ok: true, value: { relay: 'site-b', entry: { name: 'web' } } });
  });

  it('refuses a colliding bare name and says which qualified names to use', () => {
    const picked = selectFleetHost(fleetHosts(relays), 'web');
    expect(picked.ok).toBe(false);
    if (!picked.ok) {
      expect(picked.error.code).toBe('host_ambiguous');
      expect(picked.error.message).toContain('site-a/web or site-b/web');
    }
  });

  it('never guesses: no host argument with several hosts is ambiguous, an unknown name is not configured', () => {
    const hosts = fleetHosts(relays);
    expect(selectFleetHost(hosts, undefined)).toMatchObject({ ok: false, error: { code: 'host_ambiguous' } });
    expect(selectFleetHost(hosts, 'site-c/web')).toMatchObject({ ok: false, error: { code: 'host_not_configured' } });
    expect(
      selectFleetHost(
        fleetHosts([relays[0] as RelayInventory], (_r, host) => host.name === 'db'),
        undefined,
      ),
    ).toMatchObject({ ok: true, value: { id: 'db' } });
  });
});

describe('relay tokens', () => {
  it('carry the relay name before the last colon, and a secret of 256 bits', () => {
    const token = newRelayToken('site.a_1');
    expect(relayNameInToken(token)).toBe('site.a_1');
    expect(token.split(':')[1]).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('are not mistaken for a name when the shape is wrong', () => {
    expect(relayNameInToken('just-a-long-deployment-token-0123456789')).toBeNull();
    expect(relayNameInToken(':abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG')).toBeNull();
    expect(relayNameInToken('bad/name:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG')).toBeNull();
    expect(relayNameInToken('site:short')).toBeNull();
  });
});
