/**
 * The gate's decision, made inside the TeamDirectory (which holds the caller's standing, the policy
 * and the fleet), so one call both decides and records the audit row: is the caller's account
 * active, which hosts (across all relays) may they see, and is their role on the chosen host enough.
 * `denied` tells a policy refusal (audited as denied) from a plain failure such as no relay.
 */
import { failure, success, type Outcome } from '../../shared/errors.ts';
import { READ_ONLY_CAPABILITY } from '../../shared/capabilities.ts';
import { fleetHosts, policyHost, qualifiedName, selectFleetHost, type FleetRelay } from './fleet.ts';
import { roleAtLeast, roleOn, type Role } from './policy.ts';
import type { HostRoute } from '../relay/host-route.ts';
import { relayStates } from '../relay/fleet.ts';
import type { Access } from './team-directory.ts';

/** A call the gate let through: where it goes, resolved once, and the names it is known by. */
export interface CallGate {
  route: HostRoute;
  /** What the caller calls it: the bare name, or relay/host when several relays have that name. */
  id: string;
  /** relay/host: names the host unambiguously whatever other relays appear later (for records that outlive the call). */
  qualified: string;
}

export interface GateDecision {
  outcome: Outcome<CallGate>;
  denied: boolean;
}

/**
 * The hosts of the relays that count, from the copy the team directory keeps (each hub pushes its
 * relay's hosts there before it welcomes the relay, and a revoked relay leaves at once). A relay
 * that has not pushed its hosts yet (it last said hello before the copy existed) is asked through its hub.
 */
export async function fleetOf(env: Env, access: Access): Promise<FleetRelay[]> {
  const missing = access.fleet.filter((relay) => relay.hosts === null).map((relay) => relay.relayId);
  const asked = missing.length > 0 ? await relayStates(env, missing) : [];
  return access.fleet.flatMap((relay) => {
    if (relay.hosts !== null) return [{ relayId: relay.relayId, hosts: relay.hosts }];
    const state = asked.find((candidate) => candidate.relayId.toLowerCase() === relay.relayId.toLowerCase());
    return state ? [{ relayId: relay.relayId, hosts: state.hosts }] : [];
  });
}

/** Resolve the host among those the caller may see, and check their role there. */
export async function decideGate(
  env: Env,
  access: Access,
  username: string,
  tool: string,
  requestedHost: string | undefined,
  needed: Role,
): Promise<GateDecision> {
  if (!access.active) return { outcome: failure('access_denied', `The account "${username}" is disabled or no longer exists.`), denied: true };
  const { policy, subject } = access;
  const relays = await fleetOf(env, access);
  if (relays.length === 0) return { outcome: failure('relay_not_connected', 'No relay has connected to this server yet.'), denied: false };
  const visible = fleetHosts(relays, (relay, host) => roleOn(policy, subject, policyHost(relay, host)) !== null);
  const selected = selectFleetHost(visible, requestedHost);
  if (!selected.ok) {
    // A host that exists but is hidden from the caller is reported exactly like a missing one.
    const hidden =
      requestedHost !== undefined &&
      fleetHosts(relays).some((host) => host.entry.name === requestedHost || qualifiedName(host.relay, host.entry.name) === requestedHost);
    return { outcome: selected, denied: hidden };
  }
  const { relay, entry, id } = selected.value;
  const role = roleOn(policy, subject, policyHost(relay, entry));
  if (!roleAtLeast(role, needed)) {
    // Say the real reason: on a host the relay marks read-only, no grant can allow more than viewing.
    const readOnly = entry.capabilities.includes(READ_ONLY_CAPABILITY) && !roleAtLeast('viewer', needed);
    return {
      outcome: readOnly
        ? failure(
            'host_read_only',
            `The relay's configuration makes ${id} read-only (relay "${relay}"), so ${tool} is refused there whatever your role (${role ?? 'none'}). Nothing was sent to the host.`,
          )
        : failure('access_denied', `Your role on ${id} is ${role ?? 'none'}; ${tool} needs ${needed}. Nothing was sent to the host.`),
      denied: true,
    };
  }
  return { outcome: success({ route: { relay, host: entry.name }, id, qualified: qualifiedName(relay, entry.name) }), denied: false };
}
