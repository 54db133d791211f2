/**
 * The gate's decision, made inside the TeamDirectory (which holds the caller's standing, the policy
 * and the fleet), so one call both decides and records the audit row: is the caller's account
 * active and nothing it touches frozen, which hosts (across all relays) may they see, and is their
 * role on the chosen host enough (for a command: what the command rules say).
 * `denied` tells a policy refusal (audited as denied) from a plain failure such as no relay.
 */
import { failure, success, type Outcome } from '../../shared/errors.ts';
import { READ_ONLY_CAPABILITY } from '../../shared/capabilities.ts';
import { fleetHosts, policyHost, qualifiedName, selectFleetHost, type FleetRelay } from './fleet.ts';
import { COMMAND_ROLE, decideCommand, roleAtLeast, roleOn, type CommandRuling, type Role } from './policy.ts';
import type { CommandClassification, RuleRef } from '../../shared/shell/command-class.ts';
import type { HostInventoryEntry } from '../../shared/protocol.ts';
import { frozenReason } from './freeze.ts';
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
  /**
   * For a call that runs a command: what the command rules decided (allow, or approve/confirm: the
   * call must be held for a person); null for other calls. A denied command never gets a CallGate.
   */
  command: CommandRuling | null;
  /** The policy revision the decision was made under (an approval binds to it). */
  policyRevision: number;
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

/** A host the caller may see, resolved, with their role there. */
export interface ResolvedHost {
  relay: string;
  entry: HostInventoryEntry;
  /** What the caller calls it. */
  id: string;
  role: Role | null;
}

export type Resolution = { ok: true; host: ResolvedHost } | { ok: false; outcome: Outcome<never>; denied: boolean };

/** Why an inactive caller is refused: their account, or the sign-in (OAuth grant) their token belongs to. */
export function inactiveReason(access: Access, username: string): string {
  return access.grantRevoked
    ? 'This sign-in was revoked (an admin changed the account, or its refresh token was used twice). Sign in again.'
    : `The account "${username}" is disabled or no longer exists.`;
}

/** Standing, freeze and host resolution: everything a call's decision needs before its own rules. */
export async function resolveGateHost(env: Env, access: Access, username: string, requestedHost: string | undefined): Promise<Resolution> {
  if (!access.active) return { ok: false, outcome: failure('access_denied', inactiveReason(access, username)), denied: true };
  const frozen = frozenReason(access.freeze, access.subject.username);
  if (frozen !== null) return { ok: false, outcome: failure('access_denied', frozen), denied: true };
  const { policy, subject } = access;
  const relays = await fleetOf(env, access);
  if (relays.length === 0) return { ok: false, outcome: failure('relay_not_connected', 'No relay has connected to this server yet.'), denied: false };
  const visible = fleetHosts(relays, (relay, host) => roleOn(policy, subject, policyHost(relay, host)) !== null);
  const selected = selectFleetHost(visible, requestedHost);
  if (!selected.ok) {
    // A host that exists but is hidden from the caller is reported exactly like a missing one.
    const hidden =
      requestedHost !== undefined &&
      fleetHosts(relays).some((host) => host.entry.name === requestedHost || qualifiedName(host.relay, host.entry.name) === requestedHost);
    return { ok: false, outcome: selected, denied: hidden };
  }
  const { relay, entry, id } = selected.value;
  const relayFrozen = frozenReason(access.freeze, access.subject.username, relay);
  if (relayFrozen !== null) return { ok: false, outcome: failure('access_denied', relayFrozen), denied: true };
  return { ok: true, host: { relay, entry, id, role: roleOn(policy, subject, policyHost(relay, entry)) } };
}

/** Why a role falls short, in the caller's words: on a host the relay marks read-only, no grant can allow more than viewing. */
function roleRefusal(host: ResolvedHost, tool: string, needed: Role, commandRules: boolean): Outcome<never> {
  const { relay, entry, id, role } = host;
  const readOnly = entry.capabilities.includes(READ_ONLY_CAPABILITY) && !roleAtLeast('viewer', needed);
  if (readOnly)
    return failure(
      'host_read_only',
      `The relay's configuration makes ${id} read-only (relay "${relay}"), so ${tool} is refused there whatever your role (${role ?? 'none'}). Nothing was sent to the host.`,
    );
  const rules = commandRules ? ', and no command rule allows this command there' : '';
  return failure('access_denied', `Your role on ${id} is ${role ?? 'none'}; ${tool} needs ${needed}${rules}. Nothing was sent to the host.`);
}

/** What a refused command is told: the rule, its note, and what the command was taken for. */
export function ruleRefusal(id: string, rule: RuleRef, command: CommandClassification): Outcome<never> {
  const note = rule.note !== null ? ` (${rule.note})` : '';
  const why = command.reasons.length > 0 ? `: ${command.reasons.slice(0, 3).join('; ')}` : '';
  return failure(
    'access_denied',
    `Command rule ${rule.index}${note} forbids this command on ${id}. It was classified ${command.class}${why}. Nothing was sent to the host.`,
  );
}

/**
 * Resolve the host among those the caller may see, and check the call: a call that runs a command
 * (`command` given) by the command rules with the role default folded in (decideCommand), any other
 * by the caller's role there.
 */
export async function decideGate(
  env: Env,
  access: Access,
  username: string,
  tool: string,
  requestedHost: string | undefined,
  needed: Role,
  call?: { classification: CommandClassification; classified?: boolean },
): Promise<GateDecision> {
  const resolved = await resolveGateHost(env, access, username, requestedHost);
  if (!resolved.ok) return { outcome: resolved.outcome, denied: resolved.denied };
  const host = resolved.host;
  let ruling: CommandRuling | null = null;
  // Fail closed: with command rules in force, a command the classifier could not look at is not
  // guessed about (a deny of "mkfs*" would not see the program), it is refused.
  if (call !== undefined && call.classified === false && (access.policy.commandRules ?? []).length > 0)
    return {
      outcome: failure(
        'internal',
        'The command classifier is not working, so the command rules cannot be applied; nothing was sent to the host. Retry later or tell an admin.',
      ),
      denied: false,
    };
  const command = call?.classification;
  if (command !== undefined) {
    ruling = decideCommand(access.policy, access.subject, policyHost(host.relay, host.entry), host.role, command);
    if (ruling.effect === 'deny')
      return {
        outcome:
          ruling.rule === null
            ? roleRefusal(host, tool, COMMAND_ROLE, (access.policy.commandRules ?? []).length > 0)
            : ruleRefusal(host.id, ruling.rule, command),
        denied: true,
      };
  } else if (!roleAtLeast(host.role, needed)) {
    return { outcome: roleRefusal(host, tool, needed, false), denied: true };
  }
  return {
    outcome: success({
      route: { relay: host.relay, host: host.entry.name },
      id: host.id,
      qualified: qualifiedName(host.relay, host.entry.name),
      command: ruling,
      policyRevision: access.policyRevision,
    }),
    denied: false,
  };
}
