import type { RelayHub } from './relay-hub.ts';

/** Set by the /relay route after it has checked the relay's credential; the hub reads its name from it. */
export const AUTHENTICATED_RELAY_HEADER = 'X-Authenticated-Relay';

/** Each relay has its own hub, so one site's traffic never waits on another's. */
export function relayHub(env: Env, relay: string): DurableObjectStub<RelayHub> {
  return env.RELAY_HUB.get(env.RELAY_HUB.idFromName(`relay:${relay.toLowerCase()}`));
}
