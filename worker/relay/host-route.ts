/**
 * Where a call goes: the relay that serves the host and the host's own name there. The policy gate
 * (worker/team/gate-call.ts) resolves it once; everything after it (the adapter, the hub) takes it
 * as it is and never selects a host again. The hub still refuses a host its relay does not serve.
 */
export interface HostRoute {
  relay: string;
  host: string;
}
