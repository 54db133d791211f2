/**
 * `ssh_approval_status(approval_id)`: how a requester on any client carries on a held call. It
 * shows the approval's state; once it is approved (and not yet used) it runs the stored call for
 * the requester and returns that call's result; a rejected or expired one is a clear refusal. An
 * approval asked for by someone else is answered as an unknown id. The tool never approves: a
 * model must not be able to approve its own call.
 */
import type { CallToolResult, McpServer } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { errorResult } from '../../shared/tool-results.ts';
import { registerTool } from '../../shared/tool-registration.ts';
import { approvalDesk } from './approval-desk.ts';
import { APPROVAL_ID_PATTERN, approversLabel, type ApprovalRecord } from './approval-record.ts';
import { refusalOf } from './approvals.ts';

export interface ApprovalStatusCaller {
  userId: string;
  username: string;
  /** The OAuth grant of the caller's token: refused once revoked. */
  grantId?: string;
}

/**
 * Runs an approved record's call for its requester through the same executor path as the original
 * call: the gate resolves the route and the policy revision now, consumeApproval(env, record.id,
 * binding) uses the approval (refused unless everything still matches), then the call runs. Its
 * result (or the refusal) is returned as the tool's result.
 */
export type RunApproved = (record: ApprovalRecord, signal: AbortSignal) => Promise<CallToolResult>;

const input = z
  .object({
    approval_id: z.string().regex(APPROVAL_ID_PATTERN, 'approval_id is the 32 hex digits a held call returned').describe('The id a held call returned.'),
  })
  .strict();

function stateText(record: ApprovalRecord): string {
  return [
    `Approval ${record.id}: ${record.state}.`,
    `Command on ${record.host} (${record.tool}, class ${record.class}): ${record.command}`,
    `Waiting for ${approversLabel(record)}; expires at ${new Date(record.expiresAt).toISOString()}. Call ssh_approval_status again later.`,
  ].join('\n');
}

export function registerApprovalStatusTool(server: McpServer, env: Env, caller: ApprovalStatusCaller, run: RunApproved): void {
  registerTool(
    server,
    'ssh_approval_status',
    {
      title: 'Check or carry on a held command',
      description:
        'When a command was held for approval, the call returned an approval id. Pass it here: while it waits this says so; once a person approved it, this runs the command (once) and returns its result; a rejected or expired approval is refused.',
      inputSchema: input,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    },
    async (args, ctx): Promise<CallToolResult> => {
      const found = await approvalDesk(env).status(args.approval_id, caller);
      if (!found.ok) return errorResult(found.error);
      const record = found.value;
      // Only the requester's own call is carried on here; an approver reading the status sees nothing run.
      if (record.requester.userId !== caller.userId)
        return errorResult({ code: 'approval_not_found', message: `No approval ${args.approval_id} of yours exists.` });
      if (record.state === 'pending') return { content: [{ type: 'text', text: stateText(record) }] };
      if (record.state !== 'approved') return errorResult(refusalOf(record));
      return run(record, ctx.mcpReq.signal);
    },
  );
}
