/**
 * Policy and audit in front of the hub executor. Every call is checked against the team's policy
 * (worker/team) before anything is sent to a relay, and every call, allowed or denied, is written
 * to the audit log (worker/audit). The caller's standing is read afresh on each call, so disabling
 * a user or changing a grant takes effect on the very next request.
 */
import { failure, success, type Outcome } from '../../shared/errors.ts';
import { fleetHosts, policyHost, qualifiedName } from '../team/fleet.ts';
import type { ExecOutcome } from '../../shared/exec-output.ts';
import type { DirectoryListing, FileReadResult, FileWriteResult } from '../../shared/file-types.ts';
import { isDeploymentAdmin, roleOn, type Role } from '../team/policy.ts';
import type { GuestKind } from '../../shared/proxmox.ts';
import {
  unknownTransfer,
  type ImageKitDownloadDone,
  type ImageKitDownloadOffer,
  type ImageKitUploadDone,
  type ImageKitUploadOffer,
} from '../../shared/imagekit/transfers.ts';
import type {
  DownloadLinkRequest,
  ExecRequest,
  HostListing,
  LinkOffer,
  PveOutcome,
  PveRequest,
  ReadFileRequest,
  RelayPing,
  ToolExecutor,
  UploadLinkRequest,
  WriteFileRequest,
} from '../../shared/tool-executor.ts';
import { waitUntil } from 'cloudflare:workers';
import { writeAudit, type AuditEntry } from '../audit/audit-log.ts';
import { reportDoCalls } from '../do-call-count.ts';
import { recordAuditLater } from '../team/audit-batch.ts';
import { finishAudit, gateCall, standingAndFleet, standingOf, type CallGate } from '../team/gate-call.ts';
import { fleetOf } from '../team/gate-decision.ts';
import { teamDirectory, type CommandCheck, type GateCommand } from '../team/team-directory.ts';
import { underSudoText, type ClassifyCommand } from '../../shared/shell/command-class.ts';
import type { CommandCheckResult } from '../../shared/check-command-tool.ts';
import { logEvent } from '../log.ts';
import { holdForPerson, type HeldCallDetails } from './command-hold.ts';
import type { HubExecutor } from './hub-executor.ts';
import { jobBook, jobOwners, type JobBook, type JobLocation } from '../jobs/job-book.ts';
import { MAX_LISTED_JOBS } from '../../shared/limits.ts';
import { newJobId, type JobListRequest, type JobPage, type JobStream, type JobView, type StartJobRequest } from '../../shared/jobs.ts';

export interface Caller {
  userId: string;
  username: string;
  /** The MCP client the token was issued to, when known. */
  client: string | null;
  /** The OAuth grant of the caller's access token: the team directory refuses it once revoked. */
  grantId?: string;
}

type Details = Pick<AuditEntry, 'exitCode' | 'bytes'>;
const NO_DETAILS: Details = { exitCode: null, bytes: null };

export class PolicedExecutor implements ToolExecutor {
  private readonly inner: HubExecutor;
  private readonly env: Env;
  private readonly caller: Caller;
  private readonly classify: ClassifyCommand;

  /** `classify`: the Worker's command classifier (worker/shell/classifier.ts), run here before the gate. */
  constructor(inner: HubExecutor, env: Env, caller: Caller, classify: ClassifyCommand) {
    this.inner = inner;
    this.env = env;
    this.caller = caller;
    this.classify = classify;
  }

  /** A classifier that fails (its parser could not load) leaves the command unknown: treated as privileged, never as safe. */
  private async classified(text: string): Promise<GateCommand> {
    try {
      return { text, classification: await this.classify(text) };
    } catch (error) {
      logEvent('error', 'could not classify a command; it counts as unknown', { error: String(error) });
      return { text, classification: { class: 'unknown', programs: [], reasons: ['the command could not be classified'] }, classified: false };
    }
  }

  private async record(entry: Omit<AuditEntry, 'time' | 'user' | 'client' | 'durationMs'>, started: number): Promise<void> {
    await writeAudit(this.env, {
      ...entry,
      time: new Date(started).toISOString(),
      user: this.caller.username,
      client: this.caller.client,
      durationMs: Date.now() - started,
    });
  }

  /**
   * Check, run on the resolved host, and audit, for a tool that works on one host. The inner
   * executor gets the gate's route (resolved once); the caller sees the host by the name they know it by.
   */
  private async onHost<T extends { host: string }>(
    tool: string,
    target: string | null,
    requestedHost: string | undefined,
    needed: Role,
    run: (gate: CallGate) => Promise<Outcome<T>>,
    details: (value: T) => Details = () => NO_DETAILS,
    commandCall?: { text: string } & HeldCallDetails,
  ): Promise<Outcome<T>> {
    const started = Date.now();
    // A command is classified here, in the Worker, so the gate's one call can apply the command rules.
    // Under sudo the command is classified as what runs (`sudo sh -c COMMAND`: at least privileged), and keeps its own text.
    const command =
      commandCall !== undefined
        ? { ...(await this.classified(commandCall.sudo ? underSudoText(commandCall.text) : commandCall.text)), text: commandCall.text }
        : undefined;
    const entry = {
      time: new Date(started).toISOString(),
      user: this.caller.username,
      client: this.caller.client,
      relay: null,
      host: requestedHost ?? null,
      tool,
      target,
    };
    // One TeamDirectory call decides the call and writes its audit row: `started` before anything
    // is sent (so a call whose outcome is never learned still shows), or complete when refused.
    const request = { entry, requestedHost, needed, begin: true, grantId: this.caller.grantId, ...(command ? { command } : {}) };
    const { outcome: gate, auditId } = await gateCall(this.env, request);
    if (!gate.ok) return gate;
    const decided = gate.value.command;
    if (command && commandCall && decided && (decided.effect === 'approve' || decided.effect === 'confirm')) {
      const held = await holdForPerson(
        {
          env: this.env,
          caller: this.caller,
          gate: { ...gate.value, command: decided },
          command,
          entry,
          details: commandCall,
          regate: () => gateCall(this.env, { ...request, begin: false }),
        },
        run,
        details,
      );
      return held.ok ? success({ ...held.value, host: gate.value.id }) : held;
    }
    if (auditId === null) return failure('internal', 'The audit log could not be written, so nothing was sent to the host. Retry in a moment.');
    const outcome = run(gate.value).then((result) => {
      // The answer is ready here: what came before it is the critical path (test builds count it).
      reportDoCalls(tool);
      return result;
    });
    // The row is completed off the critical path: the answer does not wait for the audit log.
    // Under waitUntil: when the client drops the request the invocation ends at once, yet the
    // relay's answer to the cancel must still arrive and the audit row must still be completed.
    waitUntil(
      outcome.then((result) =>
        finishAudit(
          this.env,
          auditId,
          {
            outcome: result.ok ? 'ok' : 'error',
            code: result.ok ? null : result.error.code,
            ...(result.ok ? details(result.value) : NO_DETAILS),
            durationMs: Date.now() - started,
          },
          tool,
        ),
      ),
    );
    const result = await outcome;
    return result.ok ? success({ ...result.value, host: gate.value.id }) : result;
  }

  /** ssh_check_command: classify here, then one TeamDirectory call resolves the host, applies the rules and records a `checked` row. */
  async checkCommand(request: { command: string; host?: string; sudo?: boolean }, _signal: AbortSignal): Promise<Outcome<CommandCheckResult>> {
    const started = Date.now();
    const { classification } = await this.classified(request.sudo ? underSudoText(request.command) : request.command);
    const entry = {
      time: new Date(started).toISOString(),
      user: this.caller.username,
      client: this.caller.client,
      relay: null,
      host: request.host ?? null,
      tool: 'ssh_check_command',
      target: request.sudo ? `sudo: ${request.command}` : request.command,
    };
    let checked: Outcome<CommandCheck>;
    try {
      checked = await teamDirectory(this.env).checkCommand(entry, request.host, classification, this.caller.grantId);
    } catch (error) {
      logEvent('error', 'could not check a command', { user: this.caller.username, error: String(error) });
      return failure('internal', 'The policy could not be read; retry in a moment. Nothing was run.');
    }
    reportDoCalls('ssh_check_command');
    if (!checked.ok) return checked;
    const { host, role, ruling, policyRevision } = checked.value;
    return success({
      host,
      ...classification,
      decision: {
        effect: ruling.effect,
        rule: ruling.rule,
        ...(ruling.effect === 'approve' ? { approvers: ruling.approvers } : {}),
        role,
        policyRevision,
      },
    });
  }

  async listHosts(options: { probe: boolean }, _signal: AbortSignal): Promise<Outcome<HostListing>> {
    const started = Date.now();
    const { standing, relays } = await standingAndFleet(this.env, this.caller.username, this.caller.grantId);
    if (!standing.ok) {
      await this.record(
        { relay: null, host: null, tool: 'ssh_list_hosts', target: null, outcome: 'denied', code: standing.error.code, ...NO_DETAILS },
        started,
      );
      return standing;
    }
    const { policy, subject } = standing.value;
    const visible = new Map(
      fleetHosts(relays, (relay, host) => roleOn(policy, subject, policyHost(relay, host)) !== null).map((host) => [
        qualifiedName(host.relay, host.entry.name),
        host,
      ]),
    );
    // Only relays that serve the caller something are asked (and probed).
    const serving = relays.filter((relay) => [...visible.values()].some((host) => host.relay === relay.relayId));
    const listing = await this.inner.listRelays(serving, options.probe);
    if (!listing.ok) {
      await this.record({ relay: null, host: null, tool: 'ssh_list_hosts', target: null, outcome: 'error', code: listing.error.code, ...NO_DETAILS }, started);
      return listing;
    }
    const hosts = listing.value.hosts.flatMap((view) => {
      const host = visible.get(qualifiedName(view.relay, view.name));
      const role = host ? roleOn(policy, subject, policyHost(host.relay, host.entry)) : null;
      return host && role ? [{ ...view, name: host.id, role }] : [];
    });
    const total = relays.reduce((sum, relay) => sum + relay.hosts.length, 0);
    await this.record({ relay: null, host: null, tool: 'ssh_list_hosts', target: null, outcome: 'ok', code: null, ...NO_DETAILS }, started);
    return success({ relays: listing.value.relays, hosts, hiddenHosts: total - hosts.length });
  }

  async exec(request: ExecRequest, signal: AbortSignal): Promise<Outcome<ExecOutcome>> {
    const guest = request.guest;
    return this.onHost(
      guest ? (guest.kind === 'lxc' ? 'proxmox_container_exec_command' : 'proxmox_vm_exec_command') : 'ssh_exec_command',
      guest ? `${guestLabel(guest.kind, guest.id)}: ${request.command}` : request.sudo ? `sudo: ${request.command}` : request.command,
      request.host,
      'operator',
      ({ route }) => this.inner.exec(route, request, signal),
      (value) => ({ exitCode: value.exitCode, bytes: value.stdoutBytes + value.stderrBytes }),
      {
        text: request.command,
        timeoutMs: request.timeoutMs,
        guest: request.guest ?? null,
        ...(request.sudo ? { sudo: true } : {}),
        signal,
        ...(request.approvalId !== undefined ? { approvalId: request.approvalId } : {}),
        ...(request.progress ? { onWaiting: (message: string | null) => request.progress?.note(message) } : {}),
        ...(request.confirm ? { confirm: request.confirm } : {}),
      },
    );
  }

  async readFile(request: ReadFileRequest, signal: AbortSignal): Promise<Outcome<FileReadResult & { host: string }>> {
    return this.onHost(
      'ssh_read_file',
      pathLabel(request),
      request.host,
      'viewer',
      ({ route }) => this.inner.readFile(route, request),
      (value) => ({ exitCode: null, bytes: Math.floor((value.dataBase64.length * 3) / 4) }),
    );
  }

  async writeFile(request: WriteFileRequest, signal: AbortSignal): Promise<Outcome<FileWriteResult & { host: string }>> {
    return this.onHost(
      'ssh_write_file',
      pathLabel(request),
      request.host,
      'operator',
      ({ route }) => this.inner.writeFile(route, request),
      (value) => ({ exitCode: null, bytes: value.size }),
    );
  }

  async listDirectory(request: { host?: string; path: string }, signal: AbortSignal): Promise<Outcome<DirectoryListing & { host: string }>> {
    return this.onHost('ssh_list_directory', request.path, request.host, 'viewer', ({ route }) => this.inner.listDirectory(route, request));
  }

  async requestUpload(request: UploadLinkRequest, signal: AbortSignal): Promise<Outcome<LinkOffer>> {
    return this.onHost('ssh_request_upload', pathLabel(request), request.host, 'operator', ({ route }) => this.inner.requestUpload(route, request));
  }

  async requestDownload(request: DownloadLinkRequest, signal: AbortSignal): Promise<Outcome<LinkOffer>> {
    return this.onHost('ssh_request_download', pathLabel(request), request.host, 'viewer', ({ route }) => this.inner.requestDownload(route, request));
  }

  async imagekitRequestUpload(request: UploadLinkRequest, signal: AbortSignal): Promise<Outcome<ImageKitUploadOffer>> {
    return this.onHost('imagekit_request_upload', pathLabel(request), request.host, 'operator', ({ route, qualified }) =>
      this.inner.imagekitRequestUpload(route, { ...request, host: qualified }),
    );
  }

  async imagekitRequestDownload(request: DownloadLinkRequest, signal: AbortSignal): Promise<Outcome<ImageKitDownloadOffer>> {
    return this.onHost('imagekit_request_download', pathLabel(request), request.host, 'viewer', ({ route, qualified }) =>
      this.inner.imagekitRequestDownload(route, { ...request, host: qualified }),
    );
  }

  /** A confirm acts on the transfer's own host and path: policy is checked on them again now. */
  async imagekitConfirmUpload(request: { transferId: string; fileId?: string }, signal: AbortSignal): Promise<Outcome<ImageKitUploadDone>> {
    const done = await this.onTransfer('imagekit_confirm_upload', request.transferId, 'operator', ({ route }) =>
      this.inner.imagekitConfirmUpload(route, request),
    );
    // The caller sees the host by the name they know it by, here too.
    return done.ok ? success({ ...done.value, written: { ...done.value.written, host: done.value.host } }) : done;
  }

  async imagekitConfirmDownload(request: { transferId: string }, signal: AbortSignal): Promise<Outcome<ImageKitDownloadDone>> {
    return this.onTransfer('imagekit_confirm_download', request.transferId, 'viewer', ({ route }) => this.inner.imagekitConfirmDownload(route, request));
  }

  private async onTransfer<T extends { host: string }>(
    tool: string,
    transferId: string,
    needed: Role,
    run: (gate: CallGate) => Promise<Outcome<T>>,
  ): Promise<Outcome<T>> {
    const transfer = await this.inner.imagekitPeek(transferId);
    if (!transfer) {
      const started = Date.now();
      await this.record({ relay: null, host: null, tool, target: `transfer ${transferId}`, outcome: 'error', code: 'transfer_closed', ...NO_DETAILS }, started);
      return unknownTransfer(transferId);
    }
    return this.onHost(tool, pathLabel(transfer), transfer.host, needed, run);
  }

  /** pct/qm: looking (list, status) needs viewer; starting and stopping needs operator. */
  async proxmox(request: PveRequest, signal: AbortSignal): Promise<Outcome<PveOutcome>> {
    const looks = request.action === 'list' || request.action === 'status';
    const noun = request.kind === 'lxc' ? 'container' : 'vm';
    const tool =
      request.action === 'list' ? `proxmox_list_${noun}s` : request.action === 'status' ? `proxmox_${noun}_status` : `proxmox_${request.action}_${noun}`;
    const target = request.id !== undefined ? guestLabel(request.kind, request.id) : null;
    return this.onHost(
      tool,
      target,
      request.host,
      looks ? 'viewer' : 'operator',
      ({ route }) => this.inner.proxmox(route, request, signal),
      (value) => ({
        exitCode: value.exitCode,
        bytes: null,
      }),
    );
  }

  /**
   * Ping a relay that serves the caller at least one host (any relay, for a deployment admin). The
   * relays and their hosts come from the team directory's copy (one call, with the standing), and
   * the audit row goes to its outbox after the answer (waitUntil): a ping runs nothing on a host.
   */
  async ping(request: { relay?: string }, signal: AbortSignal): Promise<Outcome<RelayPing>> {
    const started = Date.now();
    const standing = await standingOf(this.env, this.caller.username, this.caller.grantId);
    let result: Outcome<RelayPing>;
    if (!standing.ok) {
      result = standing;
    } else {
      const { policy, subject } = standing.value;
      const admin = isDeploymentAdmin(policy, subject);
      const relays = await fleetOf(this.env, standing.value);
      const mine = relays
        .filter((relay) => admin || relay.hosts.some((host) => roleOn(policy, subject, policyHost(relay.relayId, host)) !== null))
        .map((relay) => relay.relayId);
      const chosen = selectRelay(mine, request.relay);
      result = chosen.ok ? await this.inner.ping(chosen.value) : chosen;
    }
    reportDoCalls('relay_ping');
    // Written with this isolate's next batch of audit writes: the answer does not wait for it.
    waitUntil(
      recordAuditLater(this.env, {
        time: new Date(started).toISOString(),
        user: this.caller.username,
        client: this.caller.client,
        relay: result.ok ? result.value.relayId : (request.relay ?? null),
        host: null,
        tool: 'relay_ping',
        target: null,
        outcome: result.ok ? 'ok' : standing.ok ? 'error' : 'denied',
        code: result.ok ? null : result.error.code,
        ...NO_DETAILS,
        durationMs: Date.now() - started,
      }),
    );
    return result;
  }

  // ---- background jobs: records in the caller's JobBook (worker/jobs/job-book.ts) ----

  /** Starting a job needs what running the command would: operator on the host. */
  async startJob(request: StartJobRequest, signal: AbortSignal): Promise<Outcome<JobView>> {
    const guest = request.guest;
    return this.onHost(
      'ssh_start_job',
      guest ? `${guestLabel(guest.kind, guest.id)}: ${request.command}` : request.command,
      request.host,
      'operator',
      ({ route, id }) =>
        jobBook(this.env, this.caller.userId).start({
          jobId: newJobId(),
          owner: this.caller.userId,
          ownerName: this.caller.username,
          name: request.name ?? null,
          hostLabel: id,
          route,
          guest: guest ?? null,
          command: request.command,
          timeoutMs: request.timeoutMs,
        }),
      undefined,
      {
        text: request.command,
        timeoutMs: request.timeoutMs,
        guest: guest ?? null,
        signal,
        ...(request.approvalId !== undefined ? { approvalId: request.approvalId } : {}),
        ...(request.confirm ? { confirm: request.confirm } : {}),
      },
    );
  }

  async jobStatus(request: { jobId: string }, _signal: AbortSignal): Promise<Outcome<JobView>> {
    // A job whose story is over is answered from where it was found: the policy check is the only other call.
    return this.onJob('ssh_job_status', request.jobId, 'viewer', (book, owner, _host, where) =>
      where.settled ? Promise.resolve(success(where.settled)) : book.status(owner, request.jobId),
    );
  }

  async jobOutput(
    request: { jobId: string; stream: JobStream; offset: number; limit: number },
    _signal: AbortSignal,
  ): Promise<Outcome<JobPage & { host: string }>> {
    return this.onJob('ssh_job_output', request.jobId, 'viewer', async (book, owner, host) => {
      const page = await book.output(owner, request);
      return page.ok ? success({ ...page.value, host }) : page;
    });
  }

  /** Stopping a job needs what starting it did. */
  async cancelJob(request: { jobId: string }, _signal: AbortSignal): Promise<Outcome<JobView>> {
    return this.onJob('ssh_cancel_job', request.jobId, 'operator', (book, owner) => book.cancel(owner, request.jobId));
  }

  /** The caller's jobs; with `everyone`, a deployment admin's view of every user's. */
  async listJobs(request: JobListRequest, _signal: AbortSignal): Promise<Outcome<JobView[]>> {
    const started = Date.now();
    let owners = [this.caller.userId];
    // Read even for one's own jobs (their commands are in the list): a disabled account or a revoked sign-in sees none.
    const standing = await standingOf(this.env, this.caller.username, this.caller.grantId);
    if (!standing.ok) {
      await this.record({ relay: null, host: null, tool: 'ssh_list_jobs', target: null, outcome: 'denied', code: standing.error.code, ...NO_DETAILS }, started);
      return standing;
    }
    if (request.everyone) {
      if (!isDeploymentAdmin(standing.value.policy, standing.value.subject)) {
        await this.record(
          { relay: null, host: null, tool: 'ssh_list_jobs', target: 'all users', outcome: 'denied', code: 'access_denied', ...NO_DETAILS },
          started,
        );
        return failure('access_denied', "Only an admin of this deployment may list every user's jobs (all_users=true). Nothing was listed.");
      }
      owners = await jobOwners(this.env);
    }
    const lists = await Promise.all(owners.map((owner) => jobBook(this.env, owner).list(owner, request)));
    await this.record(
      { relay: null, host: null, tool: 'ssh_list_jobs', target: request.everyone ? 'all users' : null, outcome: 'ok', code: null, ...NO_DETAILS },
      started,
    );
    // Each book sends at most MAX_LISTED_JOBS + 1; the newest of them all, as one book's list.
    return success(
      lists
        .flat()
        .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
        .slice(0, MAX_LISTED_JOBS + 1),
    );
  }

  /**
   * A call about one job: found in the caller's own book (a deployment admin's search goes on
   * through every user's book), then checked against the policy on the job's host now, as any call on
   * that host would be. An id that is not found is answered the same whoever owns it.
   */
  private async onJob<T extends { host: string }>(
    tool: string,
    jobId: string,
    needed: Role,
    run: (book: DurableObjectStub<JobBook>, owner: string, host: string, where: JobLocation) => Promise<Outcome<T>>,
  ): Promise<Outcome<T>> {
    const found = await this.findJob(jobId);
    if (!found) {
      const started = Date.now();
      await this.record({ relay: null, host: null, tool, target: jobLabel(jobId), outcome: 'error', code: 'job_not_found', ...NO_DETAILS }, started);
      return failure('job_not_found', `No job ${jobId} of yours exists.`);
    }
    const { book, owner, where } = found;
    const host = where.relay !== null ? qualifiedName(where.relay, where.host) : where.host;
    return this.onHost(tool, jobLabel(jobId), host, needed, () => run(book, owner, where.hostLabel, where));
  }

  private async findJob(jobId: string): Promise<{ book: DurableObjectStub<JobBook>; owner: string; where: JobLocation } | null> {
    const own = jobBook(this.env, this.caller.userId);
    const where = await own.locate(jobId);
    if (where) return { book: own, owner: this.caller.userId, where };
    const standing = await standingOf(this.env, this.caller.username, this.caller.grantId);
    if (!standing.ok || !isDeploymentAdmin(standing.value.policy, standing.value.subject)) return null;
    for (const owner of await jobOwners(this.env)) {
      if (owner === this.caller.userId) continue;
      const book = jobBook(this.env, owner);
      const theirs = await book.locate(jobId);
      if (theirs) return { book, owner, where: theirs };
    }
    return null;
  }
}

/** How the audit log names a job call's target. */
function jobLabel(jobId: string): string {
  return `job ${jobId}`;
}

/** A path as the audit log names it: `ct 101:/etc/hosts` when it is inside a container. */
function pathLabel(request: { ctid?: string; path: string }): string {
  return request.ctid !== undefined ? `${guestLabel('lxc', request.ctid)}:${request.path}` : request.path;
}

/** How a container or VM is named in the audit log. */
function guestLabel(kind: GuestKind, id: string): string {
  return `${kind === 'lxc' ? 'ct' : 'vm'} ${id}`;
}

function selectRelay(relays: readonly string[], requested: string | undefined): Outcome<string> {
  if (requested !== undefined) {
    const found = relays.find((relay) => relay.toLowerCase() === requested.toLowerCase());
    return found
      ? success(found)
      : failure('relay_not_connected', `There is no relay "${requested}" serving you. ${relays.length > 0 ? `Relays: ${relays.join(', ')}.` : ''}`.trim());
  }
  if (relays.length === 1 && relays[0] !== undefined) return success(relays[0]);
  if (relays.length === 0) return failure('relay_not_connected', 'No relay serving you has connected to this server yet.');
  return failure('invalid_argument', `${relays.length} relays serve you (${relays.join(', ')}); say which one with the relay argument.`);
}
