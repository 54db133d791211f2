/**
 * The seam between the tool definitions (written once) and where the work happens: in edge and
 * local modes a call becomes a protocol request to the relay hub; in stdio mode the same relay
 * operations run in-process. Every method resolves to an Outcome and never throws for expected
 * failures, so each failure keeps its error code all the way to the tool result.
 */
import type { Outcome } from './errors.ts';
import type { ExecOutcome } from './exec-output.ts';

export interface ExecRequest {
  /** Omitted when the caller sees exactly one host. */
  host?: string;
  command: string;
  timeoutMs: number;
  maxChars: number;
}

export interface HostView {
  name: string;
  relay: string;
  target: string;
  labels: Record<string, string>;
  capabilities: string[];
  /** null when the relay is not connected, so nothing could be checked. */
  reachable: boolean | null;
  detail?: string;
  latencyMs?: number;
}

export interface RelayView {
  id: string;
  connected: boolean;
  version?: string;
  /** When the relay last said hello (ISO 8601). */
  connectedSince?: string;
}

export interface HostListing {
  relays: RelayView[];
  hosts: HostView[];
}

export interface RelayPing {
  relayId: string;
  relayVersion: string;
  roundTripMs: number;
}

export interface ToolExecutor {
  listHosts(options: { probe: boolean }, signal: AbortSignal): Promise<Outcome<HostListing>>;
  exec(request: ExecRequest, signal: AbortSignal): Promise<Outcome<ExecOutcome>>;
  /** Only where there is a relay to ping; the relay_ping tool is offered when this exists. */
  ping?(signal: AbortSignal): Promise<Outcome<RelayPing>>;
}
