/**
 * Carry on a call a person approved (ssh_approval_status): the same call, rebuilt from the record,
 * goes through the executor again with the approval's id, so it is gated afresh (the host, the
 * caller's standing, the command rules and the policy revision now) and the approval is used once
 * just before it is sent. Its answer is the one the original tool would have given.
 */
import type { CallToolResult } from '@modelcontextprotocol/server';
import { formatExecResult } from '../../shared/exec-output.ts';
import { jobResult } from '../../shared/job-tools.ts';
import type { ToolSettings } from '../../shared/tool-catalog.ts';
import type { ToolExecutor } from '../../shared/tool-executor.ts';
import { errorResult } from '../../shared/tool-results.ts';
import { callOf, type ApprovalRecord } from './approval-record.ts';
import type { RunApproved } from './approval-status-tool.ts';

export function approvedCallRunner(executor: ToolExecutor, settings: ToolSettings): RunApproved {
  return async (record: ApprovalRecord, signal: AbortSignal): Promise<CallToolResult> => {
    const call = callOf(record);
    const guest = call.guest ?? undefined;
    if (call.tool === 'ssh_start_job') {
      if (!executor.startJob) return errorResult({ code: 'internal', message: 'Background jobs are not available here.' });
      const started = await executor.startJob(
        { host: call.host, command: call.command, timeoutMs: call.timeoutMs, approvalId: record.id, ...(guest ? { guest } : {}) },
        signal,
      );
      return started.ok ? jobResult(started.value, 'text') : errorResult(started.error);
    }
    const ran = await executor.exec(
      {
        host: call.host,
        command: call.command,
        timeoutMs: call.timeoutMs,
        maxChars: settings.characterLimit,
        approvalId: record.id,
        ...(guest ? { guest } : {}),
        ...(call.sudo ? { sudo: true } : {}),
      },
      signal,
    );
    if (!ran.ok) return errorResult(ran.error);
    const formatted = formatExecResult(ran.value, 'text', settings.characterLimit);
    return { content: [{ type: 'text', text: formatted.text }], structuredContent: formatted.structured, isError: formatted.isError };
  };
}
