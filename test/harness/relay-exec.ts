/**
 * A command through the relay's own operations (no Worker, no MCP): what the relay-level tests of
 * SSH reach (agent, certificates, jump hosts) run on a host, with its stdout collected.
 */
import type { Outcome } from '../../shared/errors.ts';
import type { OperationResult } from '../../shared/protocol.ts';
import type { RelayOperations } from '../../relay/operations.ts';

export async function relayExec(
  ops: RelayOperations,
  host: string,
  command: string,
  timeoutMs = 15_000,
): Promise<{ outcome: Outcome<OperationResult>; stdout: string }> {
  let stdout = '';
  const outcome = await ops.run(
    { op: 'exec', host, command, timeoutMs, maxChars: 10_000 },
    (stream, text) => {
      if (stream === 'stdout') stdout += text;
    },
    AbortSignal.timeout(timeoutMs + 5_000),
  );
  return { outcome, stdout };
}
