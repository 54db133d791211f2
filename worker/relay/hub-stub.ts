import type { RelayHub } from './relay-hub.ts';

/** One hub per deployment for now; named so several relays can get their own hubs later. */
export const DEFAULT_HUB_NAME = 'default';

export function relayHub(env: Env, name: string = DEFAULT_HUB_NAME): DurableObjectStub<RelayHub> {
  return env.RELAY_HUB.get(env.RELAY_HUB.idFromName(name));
}
