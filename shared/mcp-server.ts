/**
 * The one factory that turns an executor into an MCP server. The Worker calls it once per
 * 2026-07-28 request and once per 2025-era session; the stdio mode hands it to serveStdio, which
 * calls it once per connection (and once more for a discarded discovery probe). So it only
 * registers tools: no I/O, no timers, nothing to clean up.
 */
import { McpServer } from '@modelcontextprotocol/server';
import type { FileToolSettings } from './file-tools.ts';
import { registerJobTools } from './job-tools.ts';
import type { JobExecutor } from './jobs.ts';
import { registerImageKitTools, type ImageKitExecutor } from './imagekit-tools.ts';
import { registerProxmoxTools, type ProxmoxExecutor } from './proxmox-tools.ts';
import { registerTools } from './register-tools.ts';
import { installTaskCalls } from './task-calls.ts';
import { captureToolCallHandler } from './tool-call-capture.ts';
import { foundOnly, registerOnly } from './tool-registration.ts';
import { registerTestTools } from './test-tools.ts';
import type { ToolExecutor } from './tool-executor.ts';
import { registerCheckCommandTool, type CheckCommandExecutor } from './check-command-tool.ts';
import { VERSION } from './version.ts';

export type ProtocolEra = 'legacy' | 'modern';

export interface McpServerSpec {
  instructions: string;
  executor: ToolExecutor;
  settings: FileToolSettings;
  /** 2025-era (session, initialize) or 2026-07-28 (stateless, one request). */
  era: ProtocolEra;
  /** Offer the Proxmox tools (the executor must implement proxmox). */
  proxmox: boolean;
  /** Offer the ImageKit tools (the executor must implement the four ImageKit calls). */
  imagekit: boolean;
  /** Runtime-specific tools registered after the shared ones (the Worker's audit_log). */
  extraTools?: ReadonlyArray<(server: McpServer) => void>;
  /** The test-only tools (shared/test-tools.ts); only the test harness turns this on. */
  testTools?: boolean;
  /** 2026-07-28: the shortest timeout an exec call may have to be answered as a task (shared/task-calls.ts). */
  taskMinTimeoutSeconds?: number;
  /**
   * The server answers one tools/call of this tool and nothing else: only that tool is registered
   * (all of them when it is not one of ours, so the answer for an unknown tool stays the SDK's own).
   */
  onlyTool?: string;
}

function canProxmox(executor: ToolExecutor): executor is ProxmoxExecutor {
  return executor.proxmox !== undefined;
}

function canImageKit(executor: ToolExecutor): executor is ImageKitExecutor {
  return (
    executor.imagekitRequestUpload !== undefined &&
    executor.imagekitConfirmUpload !== undefined &&
    executor.imagekitRequestDownload !== undefined &&
    executor.imagekitConfirmDownload !== undefined
  );
}

function canCheck(executor: ToolExecutor): executor is ToolExecutor & CheckCommandExecutor {
  return executor.checkCommand !== undefined;
}

/** The executor itself as a JobExecutor, when it implements every job method. */
export function jobsOf(executor: ToolExecutor): JobExecutor | null {
  const { startJob, jobStatus, jobOutput, cancelJob, listJobs } = executor;
  if (!startJob || !jobStatus || !jobOutput || !cancelJob || !listJobs) return null;
  return {
    startJob: startJob.bind(executor),
    jobStatus: jobStatus.bind(executor),
    jobOutput: jobOutput.bind(executor),
    cancelJob: cancelJob.bind(executor),
    listJobs: listJobs.bind(executor),
  };
}

export function buildMcpServer(spec: McpServerSpec): McpServer {
  const server = new McpServer({ name: 'mcp-remote-exec', version: VERSION }, { instructions: spec.instructions });
  if (spec.onlyTool !== undefined) registerOnly(server, spec.onlyTool);
  const { executor, settings } = spec;
  const jobs = jobsOf(executor);
  const toolCall = captureToolCallHandler(server, () => {
    registerTools(server, executor, settings, spec.era);
    if (spec.proxmox && canProxmox(executor)) registerProxmoxTools(server, executor, settings, spec.era);
    if (spec.imagekit && canImageKit(executor)) registerImageKitTools(server, executor, settings);
    if (jobs) registerJobTools(server, jobs, spec.era);
    if (canCheck(executor)) registerCheckCommandTool(server, executor);
    for (const register of spec.extraTools ?? []) register(server);
    if (spec.testTools) registerTestTools(server, spec.era);
  });
  installTaskCalls(server, toolCall, {
    era: spec.era,
    jobs,
    settings,
    ...(spec.taskMinTimeoutSeconds !== undefined ? { minTimeoutSeconds: spec.taskMinTimeoutSeconds } : {}),
  });
  if (spec.onlyTool !== undefined && !foundOnly(server)) {
    const { onlyTool: _unknown, ...everything } = spec;
    return buildMcpServer(everything);
  }
  return server;
}
