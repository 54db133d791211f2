/**
 * `audit_log`: lets an admin ask the assistant what happened ("what ran on db1 yesterday?").
 * Offered in sessions of deployment admins only, and checked again on every call.
 */
import type { CallToolResult, McpServer } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { isDeploymentAdmin } from '../team/policy.ts';
import { errorResult } from '../../shared/tool-results.ts';
import { registerTool } from '../../shared/tool-registration.ts';
import { AUDIT_OUTCOMES, readAudit, writeAudit, type AuditEntry } from '../audit/audit-log.ts';
import { teamDirectory } from '../team/team-directory.ts';
import type { Caller } from './policed-executor.ts';

const auditToolInput = z
  .object({
    user: z.string().max(128).optional().describe('Only calls by this user name.'),
    host: z.string().max(256).optional().describe('Only calls on this host.'),
    tool: z.string().max(64).optional().describe('Only calls of this tool, e.g. ssh_exec_command.'),
    outcome: z
      .enum(AUDIT_OUTCOMES)
      .optional()
      .describe(
        '"ok", "error" (the call failed), "denied" (policy refused it) or "started" (sent to the host, outcome not known: still running, or the Worker or relay stopped before it was learned).',
      ),
    since: z.iso.datetime({ offset: true, error: 'since must be an ISO 8601 time, e.g. 2026-11-23T00:00:00Z' }).optional().describe('Earliest time, ISO 8601.'),
    until: z.iso.datetime({ offset: true, error: 'until must be an ISO 8601 time' }).optional().describe('Latest time, ISO 8601.'),
    limit: z.number().int().min(1).max(500).default(50).describe('Entries to return, newest first (at most 500).'),
  })
  .strict();

const auditToolOutput = z.object({
  entries: z.array(
    z.object({
      time: z.string(),
      user: z.string(),
      client: z.string().nullable(),
      relay: z.string().nullable(),
      host: z.string().nullable(),
      tool: z.string(),
      target: z.string().nullable(),
      outcome: z.enum(AUDIT_OUTCOMES),
      code: z.string().nullable(),
      exit_code: z.number().nullable(),
      bytes: z.number().nullable(),
      duration_ms: z.number(),
    }),
  ),
});

function line(entry: AuditEntry): string {
  const where = entry.host ? ` on ${entry.host}` : '';
  const what = entry.target ? `: ${entry.target}` : '';
  const how = entry.outcome === 'ok' ? (entry.exitCode !== null ? `ok, exit ${entry.exitCode}` : 'ok') : `${entry.outcome} (${entry.code ?? 'no code'})`;
  return `${entry.time} ${entry.user} ${entry.tool}${where}${what} → ${how}, ${entry.durationMs} ms`;
}

export function registerAuditTool(server: McpServer, env: Env, caller: Caller): void {
  registerTool(
    server,
    'audit_log',
    {
      title: 'Read the audit log',
      description:
        'Admins only. List recorded tool calls (who ran what, where, when, and how it ended), newest first, filtered by user, host, tool, outcome or time.',
      inputSchema: auditToolInput,
      outputSchema: auditToolOutput,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (args): Promise<CallToolResult> => {
      const started = Date.now();
      const access = await teamDirectory(env).access(caller.username, caller.grantId);
      const allowed = access.active && isDeploymentAdmin(access.policy, access.subject);
      await writeAudit(env, {
        time: new Date(started).toISOString(),
        user: caller.username,
        client: caller.client,
        relay: null,
        host: null,
        tool: 'audit_log',
        target: null,
        outcome: allowed ? 'ok' : 'denied',
        code: allowed ? null : 'access_denied',
        exitCode: null,
        bytes: null,
        durationMs: 0,
      });
      if (!allowed) return errorResult({ code: 'access_denied', message: 'Only admins of this deployment may read the audit log.' });
      const entries = await readAudit(env, args);
      const structured = {
        entries: entries.map((entry) => ({
          time: entry.time,
          user: entry.user,
          client: entry.client,
          relay: entry.relay,
          host: entry.host,
          tool: entry.tool,
          target: entry.target,
          outcome: entry.outcome,
          code: entry.code,
          exit_code: entry.exitCode,
          bytes: entry.bytes,
          duration_ms: entry.durationMs,
        })),
      };
      const text = entries.length === 0 ? 'No audit entries match.' : entries.map(line).join('\n');
      return { content: [{ type: 'text', text }], structuredContent: structured };
    },
  );
}
