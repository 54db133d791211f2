/**
 * ssh_check_command: what policy would do with a command, and why, without running it (a dry run).
 * Nothing reaches a relay or a host. Offered wherever the executor implements checkCommand: the
 * Worker answers with the team's command rules; the stdio mode has no team policy and says so.
 */
import { z } from 'zod';
import type { CallToolResult, McpServer } from '@modelcontextprotocol/server';
import { COMMAND_CLASSES, type CommandClass } from './shell/command-class.ts';
import { MAX_COMMAND_LENGTH } from './limits.ts';
import type { Outcome } from './errors.ts';
import { hostArgument, responseFormat } from './tool-catalog.ts';
import { errorResult } from './tool-results.ts';
import { registerTool } from './tool-registration.ts';
import { formatCount } from './format-count.ts';

export const CHECK_EFFECTS = ['allow', 'deny', 'approve', 'confirm'] as const;

/** What the executor answers. `decision` is null where there is no policy (stdio). */
export interface CommandCheckResult {
  /** The host as the caller names it; null where no host was resolved (stdio without one). */
  host: string | null;
  class: CommandClass;
  programs: string[];
  reasons: string[];
  decision: {
    effect: (typeof CHECK_EFFECTS)[number];
    /** The command rule that decided (index in commandRules, and its note); null: the role decided. */
    rule: { index: number; note: string | null } | null;
    /** approve: who may approve (subjects); empty means the deployment's admins. */
    approvers?: string[];
    /** The caller's role on the host. */
    role: 'viewer' | 'operator' | 'admin' | null;
    policyRevision: number;
  } | null;
  /** One line on what decides here (e.g. "stdio mode: no team policy; the class is for your information"). */
  note?: string;
}

export interface CheckCommandExecutor {
  /** `sudo`: check it as ssh_exec_command with sudo: true runs it (shared/shell/command-class.ts underSudoText). */
  checkCommand(request: { command: string; host?: string; sudo?: boolean }, signal: AbortSignal): Promise<Outcome<CommandCheckResult>>;
}

export const checkCommandInput = z
  .object({
    command: z
      .string({ error: 'command must be a string' })
      .min(1, 'command must not be empty')
      .max(MAX_COMMAND_LENGTH, `command must be at most ${formatCount(MAX_COMMAND_LENGTH)} characters`)
      .describe('The shell command to check, exactly as it would be given to ssh_exec_command. It is not run.'),
    host: hostArgument,
    sudo: z
      .boolean({ error: 'sudo must be true or false' })
      .optional()
      .describe('Check it as ssh_exec_command with sudo: true would run it: as root, `sudo sh -c COMMAND` (privileged at least).'),
    response_format: responseFormat,
  })
  .strict();

export const checkCommandOutput = z.object({
  host: z.string().nullable(),
  class: z.enum(COMMAND_CLASSES),
  programs: z.array(z.string()),
  reasons: z.array(z.string()),
  decision: z
    .object({
      effect: z.enum(CHECK_EFFECTS),
      rule: z.object({ index: z.number().int(), note: z.string().nullable() }).nullable(),
      approvers: z.array(z.string()).optional(),
      role: z.enum(['viewer', 'operator', 'admin']).nullable(),
      policy_revision: z.number().int(),
    })
    .nullable(),
  note: z.string().optional(),
});
export type CheckCommandOutput = z.infer<typeof checkCommandOutput>;

export const CHECK_COMMAND_DESCRIPTION =
  'Dry run: tells what policy would do with a command on a host (allow, deny, or hold for approval), and why: the class the command ' +
  'falls in (read-only, mutating, privileged, unknown), the programs it runs, the reasons, and the matching command rule. The command is never run.';

const EFFECT_WORDS: Record<(typeof CHECK_EFFECTS)[number], string> = {
  allow: 'would run',
  deny: 'would be refused',
  approve: 'would wait for approval by another person',
  confirm: 'would wait for your own confirmation',
};

export function checkOutput(result: CommandCheckResult): CheckCommandOutput {
  const { decision } = result;
  return {
    host: result.host,
    class: result.class,
    programs: result.programs,
    reasons: result.reasons,
    decision:
      decision === null
        ? null
        : {
            effect: decision.effect,
            rule: decision.rule,
            ...(decision.approvers !== undefined ? { approvers: decision.approvers } : {}),
            role: decision.role,
            policy_revision: decision.policyRevision,
          },
    ...(result.note !== undefined ? { note: result.note } : {}),
  };
}

export function formatCheck(result: CommandCheckResult): string {
  const lines = [`Class: ${result.class}${result.host !== null ? ` (on ${result.host})` : ''}`];
  lines.push(`Programs: ${result.programs.length > 0 ? result.programs.join(', ') : '(none the parser could name)'}`);
  for (const reason of result.reasons) lines.push(`- ${reason}`);
  const { decision } = result;
  if (decision !== null) {
    const rule =
      decision.rule === null
        ? `decided by your role (${decision.role ?? 'none'}): no command rule matches`
        : `command rule ${decision.rule.index}${decision.rule.note !== null ? ` (${decision.rule.note})` : ''}`;
    const approvers =
      decision.approvers !== undefined ? `; approvers: ${decision.approvers.length > 0 ? decision.approvers.join(', ') : "the deployment's admins"}` : '';
    lines.push(`Decision: ${decision.effect}: it ${EFFECT_WORDS[decision.effect]}; ${rule}${approvers}.`);
    lines.push(`Your role there: ${decision.role ?? 'none'}; policy revision ${decision.policyRevision}.`);
  }
  if (result.note !== undefined) lines.push(result.note);
  lines.push('Nothing was run.');
  return lines.join('\n');
}

export function registerCheckCommandTool(server: McpServer, executor: CheckCommandExecutor): void {
  registerTool(
    server,
    'ssh_check_command',
    {
      title: 'Check a command against policy (dry run)',
      description: CHECK_COMMAND_DESCRIPTION,
      inputSchema: checkCommandInput,
      outputSchema: checkCommandOutput,
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async (args, ctx): Promise<CallToolResult> => {
      const outcome = await executor.checkCommand(
        { command: args.command, ...(args.host !== undefined ? { host: args.host } : {}), ...(args.sudo ? { sudo: true } : {}) },
        ctx.mcpReq.signal,
      );
      if (!outcome.ok) return errorResult(outcome.error);
      const structured = checkOutput(outcome.value);
      const text = args.response_format === 'json' ? JSON.stringify(structured, null, 2) : formatCheck(outcome.value);
      return { content: [{ type: 'text', text }], structuredContent: structured };
    },
  );
}
