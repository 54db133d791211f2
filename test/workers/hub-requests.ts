/**
 * Requests as the Worker's adapter sends them, for tests that talk to the relay hub directly: the
 * hub takes whole protocol operations (execute), so these build the ones the tests need.
 */
import type { Outcome } from '../../shared/errors.ts';
import type { ExecResultFrame } from '../../shared/protocol.ts';
import { PROBE_TIMEOUT_MS } from '../../shared/limits.ts';
import type { RelayHub } from '../../worker/relay/relay-hub.ts';
import type { OperationReply } from '../../worker/relay/relay-requests.ts';

export interface TestExec {
  host?: string;
  command: string;
  timeoutMs: number;
  maxChars: number;
}

/** An exec request on `request.host` (web1, the fake relay's default host, when not given). */
export function execOn(hub: DurableObjectStub<RelayHub>, id: string, request: TestExec, userId?: string): Promise<Outcome<OperationReply>> {
  return hub.execute(
    id,
    { op: 'exec', host: request.host ?? 'web1', command: request.command, timeoutMs: request.timeoutMs, maxChars: request.maxChars },
    request.timeoutMs,
    { maxChars: request.maxChars, ...(userId !== undefined ? { userId } : {}) },
  );
}

/** A read_file request whose bytes come back in the reply. */
export function readOn(
  hub: DurableObjectStub<RelayHub>,
  id: string,
  request: { host: string; path: string; offset: number; length: number; maxBytes: number },
  userId?: string,
): Promise<Outcome<OperationReply>> {
  return hub.execute(id, { op: 'read_file', ...request }, 120_000, { receiveBytes: request.maxBytes, ...(userId !== undefined ? { userId } : {}) });
}

/** A probe of every host (what ssh_list_hosts check=true sends). */
export function probeOn(hub: DurableObjectStub<RelayHub>, id: string, userId?: string): Promise<Outcome<OperationReply>> {
  return hub.execute(id, { op: 'probe', hosts: [], timeoutMs: PROBE_TIMEOUT_MS }, PROBE_TIMEOUT_MS, { ...(userId !== undefined ? { userId } : {}) });
}

/** An exec result frame as a relay sends it, for a command that ran and exited 0, with `overrides`. */
export function execResult(overrides: Partial<ExecResultFrame>): ExecResultFrame {
  return {
    op: 'exec',
    exitCode: 0,
    signal: null,
    timedOut: false,
    cancelled: false,
    stopConfirmed: true,
    stdoutBytes: 0,
    stderrBytes: 0,
    stdoutTruncated: false,
    stderrTruncated: false,
    durationMs: 1,
    ...overrides,
  };
}
