/**
 * The edge/local executor: each tool call becomes one request to the relay hub Durable Object.
 * An aborted MCP request (notifications/cancelled) sends a cancel to the relay, which stops the
 * remote process; the relay's answer, marked cancelled, still ends the call.
 */
import { failure, success, type Outcome } from '../../shared/errors.ts';
import { execOutcomeFrom, type ExecOutcome } from '../../shared/exec-output.ts';
import { toBase64 } from '../../shared/file-tools.ts';
import type { DirectoryListing, FileReadResult, FileWriteResult } from '../../shared/file-types.ts';
import type { ExecRequest, HostListing, ReadFileRequest, RelayPing, ToolExecutor, WriteFileRequest } from '../../shared/tool-executor.ts';
import { relayHub } from '../relay/hub-stub.ts';

const PING_DEADLINE_MS = 5_000;

export class HubExecutor implements ToolExecutor {
  private readonly env: Env;

  constructor(env: Env) {
    this.env = env;
  }

  async listHosts(options: { probe: boolean }, _signal: AbortSignal): Promise<Outcome<HostListing>> {
    return relayHub(this.env).listHosts(options.probe, crypto.randomUUID());
  }

  async exec(request: ExecRequest, signal: AbortSignal): Promise<Outcome<ExecOutcome>> {
    if (signal.aborted) return failure('cancelled', 'The request was cancelled before it started; nothing ran.');
    const hub = relayHub(this.env);
    const id = crypto.randomUUID();
    const onAbort = (): void => {
      void hub.cancel(id);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const reply = await hub.execCommand(id, request);
      if (!reply.ok) return reply;
      const { result, stdout, stderr, host } = reply.value;
      if (result.op !== 'exec') return failure('protocol_error', 'The relay answered a command with another kind of result.');
      return success(execOutcomeFrom(host, result, stdout, stderr, request.timeoutMs));
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  async ping(_signal: AbortSignal): Promise<Outcome<RelayPing>> {
    const hub = relayHub(this.env);
    const started = Date.now();
    const reply = await hub.execute(crypto.randomUUID(), { op: 'ping' }, PING_DEADLINE_MS);
    if (!reply.ok) return reply;
    if (reply.value.result.op !== 'ping') return failure('protocol_error', 'The relay answered a ping with something else.');
    const inventory = await hub.inventory();
    return success({ relayId: inventory?.relayId ?? 'unknown', relayVersion: reply.value.result.relayVersion, roundTripMs: Date.now() - started });
  }

  async readFile(request: ReadFileRequest, _signal: AbortSignal): Promise<Outcome<FileReadResult & { host: string }>> {
    const reply = await relayHub(this.env).readFile(crypto.randomUUID(), request);
    if (!reply.ok) return reply;
    const { result, data, host } = reply.value;
    if (result.op !== 'read_file') return failure('protocol_error', 'The relay answered a read with another kind of result.');
    return success({ host, info: result.info, dataBase64: toBase64(data ?? new Uint8Array()), offset: result.offset, eof: result.eof });
  }

  async writeFile(request: WriteFileRequest, _signal: AbortSignal): Promise<Outcome<FileWriteResult & { host: string }>> {
    const reply = await relayHub(this.env).writeFile(crypto.randomUUID(), request);
    if (!reply.ok) return reply;
    const { result, host } = reply.value;
    if (result.op !== 'write_file') return failure('protocol_error', 'The relay answered a write with another kind of result.');
    return success({ host, path: result.path, size: result.size, sha256: result.sha256, mode: result.mode, replaced: result.replaced });
  }

  async listDirectory(request: { host?: string; path: string }, _signal: AbortSignal): Promise<Outcome<DirectoryListing & { host: string }>> {
    const reply = await relayHub(this.env).listDirectory(crypto.randomUUID(), request);
    if (!reply.ok) return reply;
    const { result, host } = reply.value;
    if (result.op !== 'list_directory') return failure('protocol_error', 'The relay answered a listing with another kind of result.');
    return success({ host, path: result.path, entries: result.entries, truncated: result.truncated });
  }
}
