/**
 * Policy and audit in front of the hub executor. Every call is checked against the team's policy
 * (worker/team) before anything is sent to a relay, and every call, allowed or denied, is written
 * to the audit log (worker/audit). The caller's standing is read afresh on each call, so disabling
 * a user or changing a grant takes effect on the very next request.
 */
import { success, type Outcome } from '../../shared/errors.ts';
import type { ExecOutcome } from '../../shared/exec-output.ts';
import type { DirectoryListing, FileReadResult, FileWriteResult } from '../../shared/file-types.ts';
import { roleOn, type Role } from '../../shared/policy.ts';
import type { ExecRequest, HostListing, LinkOffer, ReadFileRequest, RelayPing, ToolExecutor, WriteFileRequest } from '../../shared/tool-executor.ts';
import { writeAudit, type AuditEntry } from '../audit/audit-log.ts';
import { relayHub } from '../relay/hub-stub.ts';
import { gateCall, standingOf } from '../team/gate-call.ts';
import type { HubExecutor } from './hub-executor.ts';

export interface Caller {
  userId: string;
  username: string;
  /** The MCP client the token was issued to, when known. */
  client: string | null;
}

type Details = Pick<AuditEntry, 'exitCode' | 'bytes'>;
const NO_DETAILS: Details = { exitCode: null, bytes: null };

export class PolicedExecutor implements ToolExecutor {
  private readonly inner: HubExecutor;
  private readonly env: Env;
  private readonly caller: Caller;

  constructor(inner: HubExecutor, env: Env, caller: Caller) {
    this.inner = inner;
    this.env = env;
    this.caller = caller;
  }

  private async record(entry: Omit<AuditEntry, 'time' | 'user' | 'client' | 'durationMs'>, started: number): Promise<void> {
    await writeAudit(this.env, { ...entry, time: new Date(started).toISOString(), user: this.caller.username, client: this.caller.client, durationMs: Date.now() - started });
  }

  /** Check, run on the resolved host, and audit, for a tool that works on one host. */
  private async onHost<T>(
    tool: string,
    target: string,
    requestedHost: string | undefined,
    needed: Role,
    run: (host: string) => Promise<Outcome<T>>,
    details: (value: T) => Details = () => NO_DETAILS,
  ): Promise<Outcome<T>> {
    const started = Date.now();
    const { outcome: gate, denied } = await gateCall(this.env, this.caller.username, tool, requestedHost, needed);
    if (!gate.ok) {
      await this.record({ relay: null, host: requestedHost ?? null, tool, target, outcome: denied ? 'denied' : 'error', code: gate.error.code, ...NO_DETAILS }, started);
      return gate;
    }
    const result = await run(gate.value.host);
    await this.record(
      {
        relay: gate.value.relay,
        host: gate.value.host,
        tool,
        target,
        outcome: result.ok ? 'ok' : 'error',
        code: result.ok ? null : result.error.code,
        ...(result.ok ? details(result.value) : NO_DETAILS),
      },
      started,
    );
    return result;
  }

  async listHosts(options: { probe: boolean }, signal: AbortSignal): Promise<Outcome<HostListing>> {
    const started = Date.now();
    const [standing, inventory] = await Promise.all([standingOf(this.env, this.caller.username), relayHub(this.env).inventory()]);
    if (!standing.ok) {
      await this.record({ relay: null, host: null, tool: 'ssh_list_hosts', target: null, outcome: 'denied', code: standing.error.code, ...NO_DETAILS }, started);
      return standing;
    }
    const { policy, subject } = standing.value;
    const listing = await this.inner.listHosts(options, signal);
    if (!listing.ok) {
      await this.record({ relay: inventory?.relayId ?? null, host: null, tool: 'ssh_list_hosts', target: null, outcome: 'error', code: listing.error.code, ...NO_DETAILS }, started);
      return listing;
    }
    const entries = new Map((inventory?.hosts ?? []).map((host) => [host.name, host]));
    const hosts = listing.value.hosts.flatMap((view) => {
      const entry = entries.get(view.name);
      const role = entry ? roleOn(policy, subject, entry) : null;
      return role ? [{ ...view, role }] : [];
    });
    await this.record({ relay: inventory?.relayId ?? null, host: null, tool: 'ssh_list_hosts', target: null, outcome: 'ok', code: null, ...NO_DETAILS }, started);
    return success({ relays: listing.value.relays, hosts, hiddenHosts: listing.value.hosts.length - hosts.length });
  }

  async exec(request: ExecRequest, signal: AbortSignal): Promise<Outcome<ExecOutcome>> {
    return this.onHost(
      'ssh_exec_command',
      request.command,
      request.host,
      'operator',
      (host) => this.inner.exec({ ...request, host }, signal),
      (value) => ({ exitCode: value.exitCode, bytes: value.stdoutBytes + value.stderrBytes }),
    );
  }

  async readFile(request: ReadFileRequest, signal: AbortSignal): Promise<Outcome<FileReadResult & { host: string }>> {
    return this.onHost(
      'ssh_read_file',
      request.path,
      request.host,
      'viewer',
      (host) => this.inner.readFile({ ...request, host }, signal),
      (value) => ({ exitCode: null, bytes: Math.floor((value.dataBase64.length * 3) / 4) }),
    );
  }

  async writeFile(request: WriteFileRequest, signal: AbortSignal): Promise<Outcome<FileWriteResult & { host: string }>> {
    return this.onHost(
      'ssh_write_file',
      request.path,
      request.host,
      'operator',
      (host) => this.inner.writeFile({ ...request, host }, signal),
      (value) => ({ exitCode: null, bytes: value.size }),
    );
  }

  async listDirectory(request: { host?: string; path: string }, signal: AbortSignal): Promise<Outcome<DirectoryListing & { host: string }>> {
    return this.onHost('ssh_list_directory', request.path, request.host, 'viewer', (host) => this.inner.listDirectory({ ...request, host }, signal));
  }

  async requestUpload(request: { host?: string; path: string; permissions?: number; overwrite: boolean }, signal: AbortSignal): Promise<Outcome<LinkOffer>> {
    return this.onHost('ssh_request_upload', request.path, request.host, 'operator', (host) => this.inner.requestUpload({ ...request, host }, signal));
  }

  async requestDownload(request: { host?: string; path: string }, signal: AbortSignal): Promise<Outcome<LinkOffer>> {
    return this.onHost('ssh_request_download', request.path, request.host, 'viewer', (host) => this.inner.requestDownload({ ...request, host }, signal));
  }

  async ping(signal: AbortSignal): Promise<Outcome<RelayPing>> {
    const started = Date.now();
    const standing = await standingOf(this.env, this.caller.username);
    const result = standing.ok ? await this.inner.ping(signal) : standing;
    await this.record(
      { relay: result.ok ? result.value.relayId : null, host: null, tool: 'relay_ping', target: null, outcome: result.ok ? 'ok' : standing.ok ? 'error' : 'denied', code: result.ok ? null : result.error.code, ...NO_DETAILS },
      started,
    );
    return result;
  }
}
