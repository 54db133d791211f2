/**
 * For tests only (MCP_REMOTE_EXEC_TEST_TOOLS=true, set by the test harness): `test_request_approval`
 * opens an approval record for the caller as a held call would, so the admin page, the admin API,
 * the CLI and the webhook can be tested end to end before (and independently of) the policy that
 * holds real calls. It runs nothing.
 */
import type { CallToolResult, McpServer } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { COMMAND_CLASSES } from '../../shared/shell/command-class.ts';
import { errorResult } from '../../shared/tool-results.ts';
import { registerTool } from '../../shared/tool-registration.ts';
import { requestApproval, type ApprovalRequester } from './approvals.ts';

const input = z
  .object({
    host: z.string().min(1).max(256),
    command: z.string().min(1).max(10_000),
    class: z.enum(COMMAND_CLASSES).default('privileged'),
    reasons: z.array(z.string().max(500)).max(20).default([]),
    note: z.string().max(500).nullable().default(null),
    approvers: z.array(z.string()).max(64).default([]),
  })
  .strict();

export function registerApprovalTestTool(server: McpServer, env: Env, caller: ApprovalRequester): void {
  registerTool(
    server,
    'test_request_approval',
    { description: 'Test only: open an approval record.', inputSchema: input },
    async (args): Promise<CallToolResult> => {
      const relay = args.host.includes('/') ? (args.host.split('/')[0] ?? 'relay') : 'relay';
      const opened = await requestApproval(env, {
        caller,
        call: { tool: 'ssh_exec_command', relay, host: args.host, guest: null, command: args.command, timeoutMs: 30_000 },
        classification: { class: args.class, programs: [], reasons: args.reasons },
        decision: { effect: 'approve', rule: { index: 0, note: args.note }, approvers: args.approvers },
        policyRevision: 0,
      });
      if (!opened.ok) return errorResult(opened.error);
      return { content: [{ type: 'text', text: JSON.stringify(opened.value) }] };
    },
  );
}
