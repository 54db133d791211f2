/**
 * The stdio mode's executor: the same relay operations, called in-process instead of through the
 * Worker and the hub. Results take the same shape as the hub executor's, so the shared tool
 * definitions format them identically. There is no relay, so it has no ping (and no relay_ping tool).
 */
import { failure, success, type Outcome } from '../shared/errors.ts';
import { execOutcomeFrom, type ExecOutcome } from '../shared/exec-output.ts';
import { selectHost } from '../shared/host-selection.ts';
import { hostViews } from '../shared/host-views.ts';
import { PROBE_TIMEOUT_MS } from '../shared/limits.ts';
import type { HostStatus } from '../shared/protocol.ts';
import type { ExecRequest, HostListing, ToolExecutor } from '../shared/tool-executor.ts';
import { VERSION } from '../shared/version.ts';
import type { RelayOperations } from './operations.ts';


export class LocalExecutor implements ToolExecutor {
  private readonly operations: RelayOperations;
  private readonly startedAt = new Date().toISOString();

  constructor(operations: RelayOperations) {
    this.operations = operations;
  }

  async listHosts(options: { probe: boolean }, signal: AbortSignal): Promise<Outcome<HostListing>> {
    const relayId = this.operations.config.relayId;
    const inventory = this.operations.inventory();
    let statuses: HostStatus[] | null = null;
    if (options.probe && inventory.length > 0) {
      const probed = await this.operations.run({ op: 'probe', hosts: [], timeoutMs: PROBE_TIMEOUT_MS }, () => undefined, signal);
      if (!probed.ok) return probed;
      if (probed.value.op !== 'probe') return failure('internal', 'A probe returned something else.');
      statuses = probed.value.hosts;
    }
    return success({
      relays: [{ id: relayId, connected: true, version: VERSION, connectedSince: this.startedAt }],
      hosts: hostViews(relayId, inventory, statuses),
    });
  }

  async exec(request: ExecRequest, signal: AbortSignal): Promise<Outcome<ExecOutcome>> {
    const host = selectHost(
      this.operations.inventory().map((entry) => entry.name),
      request.host,
    );
    if (!host.ok) return host;
    const output = { stdout: '', stderr: '' };
    const result = await this.operations.run(
      { op: 'exec', host: host.value, command: request.command, timeoutMs: request.timeoutMs, maxChars: request.maxChars },
      (stream, text) => {
        output[stream] += text;
      },
      signal,
    );
    if (!result.ok) return result;
    if (result.value.op !== 'exec') return failure('internal', 'A command returned another kind of result.');
    return success(execOutcomeFrom(host.value, result.value, output.stdout, output.stderr, request.timeoutMs));
  }

}
