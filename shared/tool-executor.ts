/**
 * The seam between the tool definitions (written once) and where the work happens: in edge and
 * local modes a call becomes a protocol request to the relay hub; in stdio mode the same relay
 * operations run in-process. Every method resolves to an Outcome and never throws for expected
 * failures, so each failure keeps its error code all the way to the tool result.
 */
import type { Outcome } from './errors.ts';
import type { ExecOutcome } from './exec-output.ts';
import type { ConfirmCall } from './confirm-call.ts';
import type { ExecProgressTap } from './latest-line.ts';
import type { DirectoryListing, FileReadResult, FileWriteResult, LocalTransferResult } from './file-types.ts';
import type { GuestKind, PveAction } from './proxmox.ts';
import type { JobExecutor } from './jobs.ts';
import type { CheckCommandExecutor } from './check-command-tool.ts';
import type { ImageKitDownloadDone, ImageKitDownloadOffer, ImageKitUploadDone, ImageKitUploadOffer } from './imagekit/transfers.ts';

export interface ExecRequest {
  /** Omitted when the caller sees exactly one host. */
  host?: string;
  command: string;
  timeoutMs: number;
  maxChars: number;
  /** Run inside this Proxmox container or VM on the host. */
  guest?: { kind: GuestKind; id: string };
  /** Run under a pseudo-terminal of this size (host commands only). */
  pty?: { rows: number; cols: number };
  /** Run under sudo on the host (relay/sudo.ts); policy classifies the command as `sudo COMMAND`. */
  sudo?: boolean;
  /** Worker: carry on with this approval (ssh_approval_status) instead of asking for a new one. */
  approvalId?: string;

  /** Only when the client asked for progress: where to tell the reporter the latest output line can be read. */
  progress?: ExecProgressTap;
  /** Only when the client can be asked during the call: asks the requester to confirm a command a rule holds for them. */
  confirm?: ConfirmCall;
}

/** A fixed pct/qm command on a Proxmox host. */
export interface PveRequest {
  host?: string;
  kind: GuestKind;
  action: PveAction;
  id?: string;
  verbose?: boolean;
  timeoutSeconds?: number;
}

export interface PveOutcome {
  host: string;
  /** null when it did not finish in time, or ended by a signal. */
  exitCode: number | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
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
  /** Edge and local modes: the caller's role on this host under the team's policy. */
  role?: 'viewer' | 'operator' | 'admin';
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
  /** Edge and local modes: hosts that exist but the caller has no access to (not named). */
  hiddenHosts?: number;
}

export interface RelayPing {
  relayId: string;
  relayVersion: string;
  roundTripMs: number;
}

type OnHost<T> = T & { host: string };

export interface ReadFileRequest {
  host?: string;
  /** The path is inside this Proxmox container on the host. */
  ctid?: string;
  path: string;
  offset: number;
  length: number;
  maxBytes: number;
}

export interface WriteFileRequest {
  host?: string;
  /** The path is inside this Proxmox container on the host. */
  ctid?: string;
  path: string;
  content: Uint8Array;
  permissions?: number;
  overwrite: boolean;
  createDirs: boolean;
  maxBytes: number;
}

export interface DownloadLinkRequest {
  host?: string;
  /** The path is inside this Proxmox container on the host. */
  ctid?: string;
  path: string;
}

export interface UploadLinkRequest extends DownloadLinkRequest {
  permissions?: number;
  overwrite: boolean;
}

/** Told how far a transfer has got (bytes done of total), when the client asked for progress. */
export type ProgressReporter = (done: number, total: number) => void;

export interface UploadFileRequest {
  onProgress?: ProgressReporter;
  host?: string;
  /** remotePath is inside this Proxmox container on the host. */
  ctid?: string;
  localPath: string;
  remotePath: string;
  permissions?: number;
  overwrite: boolean;
  maxBytes: number;
}

export interface DownloadFileRequest {
  onProgress?: ProgressReporter;
  host?: string;
  /** remotePath is inside this Proxmox container on the host. */
  ctid?: string;
  remotePath: string;
  localPath: string;
  overwrite: boolean;
  maxBytes: number;
}

export interface LinkOffer {
  host: string;
  path: string;
  transferId: string;
  method: 'PUT' | 'GET';
  url: string;
  expiresAt: string;
  expiresInSeconds: number;
  maxBytes: number;
}

/** The job tools (shared/job-tools.ts) are offered where the executor implements all of JobExecutor. */
export interface ToolExecutor extends Partial<JobExecutor> {
  /** Edge and local modes: one-time HTTPS links in place of the local-path tools. */
  requestUpload?(request: UploadLinkRequest, signal: AbortSignal): Promise<Outcome<LinkOffer>>;
  requestDownload?(request: DownloadLinkRequest, signal: AbortSignal): Promise<Outcome<LinkOffer>>;
  // File tools are offered only where the executor has the method.
  readFile?(request: ReadFileRequest, signal: AbortSignal): Promise<Outcome<OnHost<FileReadResult>>>;
  writeFile?(request: WriteFileRequest, signal: AbortSignal): Promise<Outcome<OnHost<FileWriteResult>>>;
  listDirectory?(request: { host?: string; path: string }, signal: AbortSignal): Promise<Outcome<OnHost<DirectoryListing>>>;
  /** Stdio mode only: "local" is the machine running the server. */
  uploadFile?(request: UploadFileRequest, signal: AbortSignal): Promise<Outcome<OnHost<LocalTransferResult>>>;
  downloadFile?(request: DownloadFileRequest, signal: AbortSignal): Promise<Outcome<OnHost<LocalTransferResult>>>;

  listHosts(options: { probe: boolean }, signal: AbortSignal): Promise<Outcome<HostListing>>;
  exec(request: ExecRequest, signal: AbortSignal): Promise<Outcome<ExecOutcome>>;
  /** Only where there is a relay to ping; the relay_ping tool is offered when this exists. */
  ping?(request: { relay?: string }, signal: AbortSignal): Promise<Outcome<RelayPing>>;
  /** Two-phase transfers through ImageKit; the ImageKit tools are offered where these exist. */
  imagekitRequestUpload?(request: UploadLinkRequest, signal: AbortSignal): Promise<Outcome<ImageKitUploadOffer>>;
  imagekitConfirmUpload?(request: { transferId: string; fileId?: string }, signal: AbortSignal): Promise<Outcome<ImageKitUploadDone>>;
  imagekitRequestDownload?(request: DownloadLinkRequest, signal: AbortSignal): Promise<Outcome<ImageKitDownloadOffer>>;
  imagekitConfirmDownload?(request: { transferId: string }, signal: AbortSignal): Promise<Outcome<ImageKitDownloadDone>>;
  /** ssh_check_command (a dry run against policy) is offered where this exists. */
  checkCommand?: CheckCommandExecutor['checkCommand'];
  /** pct/qm on a Proxmox host; the Proxmox tools are offered where this exists. */
  proxmox?(request: PveRequest, signal: AbortSignal): Promise<Outcome<PveOutcome>>;
}
