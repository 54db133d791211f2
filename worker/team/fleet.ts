/**
 * Hosts across several relays. A host is named by its own name when that name is unique among
 * the hosts the caller can see, and as `relay/host` when two relays have a host of that name;
 * `relay/host` is always accepted. Used by the Worker to pick the relay and host of a call.
 */
import { failure, success, type Outcome } from '../../shared/errors.ts';
import type { PolicyHost } from './policy.ts';
import type { HostInventoryEntry } from '../../shared/protocol.ts';

export interface RelayInventory {
  relayId: string;
  connected: boolean;
  hosts: HostInventoryEntry[];
}

/** What naming and selecting hosts needs of a relay: its name and its hosts. */
export type FleetRelay = Pick<RelayInventory, 'relayId' | 'hosts'>;

export interface FleetHost {
  relay: string;
  entry: HostInventoryEntry;
  /** What the caller calls it: the bare name when unique among the hosts given, else relay/name. */
  id: string;
}

/** A host as policy sees it: what its relay reported, plus which relay that is. */
export function policyHost(relay: string, entry: HostInventoryEntry): PolicyHost {
  return { ...entry, relay };
}

export function qualifiedName(relay: string, host: string): string {
  return `${relay}/${host}`;
}

/** Every host of the given relays, each with the name the caller should use for it. */
export function fleetHosts(relays: readonly FleetRelay[], include: (relay: string, entry: HostInventoryEntry) => boolean = () => true): FleetHost[] {
  const hosts = relays.flatMap((relay) => relay.hosts.filter((entry) => include(relay.relayId, entry)).map((entry) => ({ relay: relay.relayId, entry })));
  const counts = new Map<string, number>();
  for (const host of hosts) counts.set(host.entry.name, (counts.get(host.entry.name) ?? 0) + 1);
  return hosts.map((host) => ({ ...host, id: (counts.get(host.entry.name) ?? 0) > 1 ? qualifiedName(host.relay, host.entry.name) : host.entry.name }));
}

/**
 * Pick the host a call is about among `hosts`. A name must match exactly; no name is fine only
 * when there is exactly one host, so a call can never land on a host the caller did not mean.
 */
export function selectFleetHost(hosts: readonly FleetHost[], requested: string | undefined): Outcome<FleetHost> {
  const ids = hosts.map((host) => host.id);
  if (requested === undefined) {
    if (hosts.length === 1 && hosts[0]) return success(hosts[0]);
    if (hosts.length === 0) {
      return failure(
        'host_not_configured',
        'No hosts are available: no relay has reported one, or none is shared with you. Add hosts in the relay config and restart the relay, or ask an admin for access.',
      );
    }
    return failure('host_ambiguous', `${hosts.length} hosts are available (${ids.join(', ')}); say which one with the host argument.`);
  }
  const matches = hosts.filter((host) => host.id === requested || qualifiedName(host.relay, host.entry.name) === requested);
  if (matches.length === 1 && matches[0]) return success(matches[0]);
  const named = hosts.filter((host) => host.entry.name === requested);
  if (named.length > 1) {
    return failure(
      'host_ambiguous',
      `Several relays have a host "${requested}": say which with ${named.map((host) => qualifiedName(host.relay, host.entry.name)).join(' or ')}.`,
    );
  }
  const known = ids.length > 0 ? `Known hosts: ${ids.join(', ')}.` : 'No hosts are available.';
  return failure('host_not_configured', `Host "${requested}" is not configured. ${known}`);
}
