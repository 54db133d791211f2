/**
 * The one policy check every tool call and every transfer link goes through: is the caller's
 * account active, which hosts may they see, and is their role on the chosen host enough.
 */
import { failure, success, type Outcome } from '../../shared/errors.ts';
import { selectHost } from '../../shared/host-selection.ts';
import { roleAtLeast, roleOn, type Role } from '../../shared/policy.ts';
import { relayHub } from '../relay/hub-stub.ts';
import { teamDirectory, type Access } from './team-directory.ts';

export interface CallGate {
  host: string;
  relay: string | null;
}

export async function standingOf(env: Env, username: string): Promise<Outcome<Access>> {
  const access = await teamDirectory(env).access(username);
  if (!access.active) return failure('access_denied', `The account "${username}" is disabled or no longer exists.`);
  return success(access);
}

/**
 * Resolve the host among those `username` may see, and check their role there. `denied` tells a
 * policy refusal (audited as denied) from a plain failure such as no relay.
 */
export async function gateCall(env: Env, username: string, tool: string, requestedHost: string | undefined, needed: Role): Promise<{ outcome: Outcome<CallGate>; denied: boolean }> {
  // Both lookups at once: each is a Durable Object round trip on the path of every call.
  const [standing, inventory] = await Promise.all([standingOf(env, username), relayHub(env).inventory()]);
  if (!standing.ok) return { outcome: standing, denied: true };
  const { policy, subject } = standing.value;
  if (!inventory) return { outcome: failure('relay_not_connected', 'No relay has connected to this server yet.'), denied: false };
  const visible = inventory.hosts.filter((host) => roleOn(policy, subject, host) !== null);
  const selected = selectHost(
    visible.map((host) => host.name),
    requestedHost,
  );
  if (!selected.ok) {
    // A host that exists but is hidden from the caller is reported exactly like a missing one.
    const hidden = requestedHost !== undefined && inventory.hosts.some((host) => host.name === requestedHost);
    return { outcome: selected, denied: hidden };
  }
  const host = visible.find((entry) => entry.name === selected.value);
  const role = host ? roleOn(policy, subject, host) : null;
  if (!host || !roleAtLeast(role, needed)) {
    return {
      outcome: failure('access_denied', `Your role on ${selected.value} is ${role ?? 'none'}; ${tool} needs ${needed}. Nothing was sent to the host.`),
      denied: true,
    };
  }
  return { outcome: success({ host: host.name, relay: inventory.relayId }), denied: false };
}
