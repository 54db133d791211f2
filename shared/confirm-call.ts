/**
 * The requester's own confirmation of a command, asked during the call. A rule (the Worker's
 * `confirm` command rule, or the stdio config's `confirm` classes) can hold a command until the
 * person at the client says yes. Only the tool layer can ask (it has the request's context), and
 * only the executor knows whether a command needs it, so the tool hands the executor a small
 * capability (ConfirmCall) in its request, the way the progress tap is handed: only when the client
 * can be asked during the call (a 2025-era session whose client declared form elicitation). An
 * executor without one falls back to what the mode offers (the Worker: the pending approval the
 * requester confirms on /approvals/mine; stdio: the config's confirm_fallback).
 *
 * The question shows the exact command through visibleText, so control characters and
 * bidirectional overrides cannot make it look like another command.
 */
import type { McpServer, ServerContext } from '@modelcontextprotocol/server';
import { z } from 'zod';
import type { ProtocolEra } from './mcp-server.ts';
import type { CommandClass } from './shell/command-class.ts';
import { visibleText } from './visible-text.ts';

/** The most of the command one question shows; the whole command is what runs, and what the approval binds. */
const SHOWN_COMMAND_CHARS = 4000;

export interface ConfirmQuestion {
  /** The host as the caller names it. */
  host: string;
  guest: { kind: 'lxc' | 'qemu'; id: string } | null;
  command: string;
  commandClass: CommandClass;
  /** Which rule asks, e.g. "rule 2: privileged commands need your confirmation" or "stdio config: confirm privileged". */
  rule: string;
  /** How long the person has to answer. */
  timeoutMs: number;
}

/**
 * `accept`: the person said yes to exactly this command. `decline` / `cancel`: they said no or
 * dismissed it. `unanswered`: the client could not be asked or did not answer in time (nothing
 * was decided).
 */
export type ConfirmAnswer = 'accept' | 'decline' | 'cancel' | 'unanswered';

/** Asks the person at the client; never throws. */
export type ConfirmCall = (question: ConfirmQuestion, signal: AbortSignal) => Promise<ConfirmAnswer>;

export function confirmMessage(question: ConfirmQuestion): string {
  const shown = visibleText(question.command);
  const command = shown.length > SHOWN_COMMAND_CHARS ? `${shown.slice(0, SHOWN_COMMAND_CHARS)}… (${question.command.length} characters)` : shown;
  const where = question.guest ? `${question.host} (${question.guest.kind === 'lxc' ? 'container' : 'VM'} ${visibleText(question.guest.id)})` : question.host;
  return `Run this ${question.commandClass} command on ${visibleText(where)}?\n\n${command}\n\nAsked by ${visibleText(question.rule)}. Nothing runs unless you confirm.`;
}

const requestedSchema = {
  type: 'object' as const,
  properties: { confirm: { type: 'boolean' as const, title: 'Run this command', default: false } },
  required: ['confirm'],
};
/** Only a real boolean true confirms; anything else the client sends is a no. */
const confirmed = z.object({ confirm: z.literal(true) });

/** The part of the client's capabilities that says whether it can be asked (built once: building a zod schema costs more than using it). */
const elicitationCapability = z.object({ elicitation: z.object({ form: z.unknown().optional(), url: z.unknown().optional() }).loose() });

/** Whether the client declared form elicitation (an empty `elicitation: {}` means form, as before modes existed). */
function declaresFormElicitation(capabilities: unknown): boolean {
  const parsed = elicitationCapability.safeParse(capabilities);
  if (!parsed.success) return false;
  const { form, url } = parsed.data.elicitation;
  return form !== undefined || url === undefined;
}

/**
 * The capability for this call, or undefined when the client cannot be asked during it: only on a
 * 2025-era session (2026-07-28 has no server-to-client request inside a call) whose client
 * declared form elicitation at initialize.
 */
export function confirmOnSession(server: McpServer, ctx: ServerContext, era: ProtocolEra): ConfirmCall | undefined {
  if (era !== 'legacy' || !declaresFormElicitation(server.server.getClientCapabilities())) return undefined;
  return async (question, signal): Promise<ConfirmAnswer> => {
    try {
      // relatedRequestId: the question travels on this call's own stream (shared/test-tools.ts).
      const answer = await ctx.mcpReq.elicitInput(
        { mode: 'form', message: confirmMessage(question), requestedSchema },
        { relatedRequestId: ctx.mcpReq.id, signal: AbortSignal.any([signal, ctx.mcpReq.signal]), timeout: Math.max(1000, question.timeoutMs) },
      );
      if (answer.action !== 'accept') return answer.action;
      return confirmed.safeParse(answer.content).success ? 'accept' : 'decline';
    } catch {
      return 'unanswered';
    }
  };
}
