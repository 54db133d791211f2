/**
 * The relays as a whole: each relay has its own hub, so a question about "all hosts" asks every
 * known relay's hub at once. Which relays count comes from the team directory (known and not
 * revoked).
 */
import type { RelayState } from './relay-hub.ts';
import { relayHub } from './hub-stub.ts';

/** The state of each named relay that has ever connected, in the order given. */
export async function relayStates(env: Env, relays: readonly string[]): Promise<RelayState[]> {
  const states = await Promise.all(relays.map((relay) => relayHub(env, relay).inventory()));
  return states.filter((state): state is RelayState => state !== null);
}
