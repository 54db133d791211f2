/**
 * The requester's own confirmation of a command, asked during the call. A rule (the Worker's
 * `confirm` command rule, or the stdio config's `confirm` classes) can hold a command until the
 * person at the client says yes. Only the tool layer can ask (it has the request's context), and
 * only the executor knows whether a command needs it, so the tool hands the executor a small
 * capability (ConfirmCall) in its request, the way the progress tap is handed: only when the client
 * declared form elicitation. On a 2025-era session it asks during the call and waits. On
 * 2026-07-28 there is no session to ask on: a request without an answer to this very question
 * answers `asked` and keeps the question, which the tool returns as an input_required result; the
 * client asks its user and retries the call with the answer, which the capability then gives. An
 * executor without one falls back to what the mode offers (the Worker: the pending approval the
 * requester confirms on /approvals/mine; stdio: the config's confirm_fallback).
 *
 * The question shows the exact command through visibleText, so control characters and
 * bidirectional overrides cannot make it look like another command.
 */
import { CLIENT_CAPABILITIES_META_KEY, inputRequired, type InputRequiredResult, type McpServer, type ServerContext } from '@modelcontextprotocol/server';
import { z } from 'zod';
import type { ProtocolEra } from './mcp-server.ts';
import { answersQuestion, questionState } from './question-binding.ts';
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
  /**
   * The server-side record the question stands for (the Worker: the approval record's id), which a
   * 2026-07-28 client's answer must come back with (shared/question-binding.ts).
   */
  record?: string;
}

/**
 * `accept`: the person said yes to exactly this command. `decline` / `cancel`: they said no or
 * dismissed it. `unanswered`: the client could not be asked or did not answer in time (nothing
 * was decided). `asked`: the question goes back to the client (2026-07-28) and the call ends here;
 * the answer comes with the client's retry (nothing was decided yet).
 */
export type ConfirmAnswer = 'accept' | 'decline' | 'cancel' | 'unanswered' | 'asked';

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

/** The key of the question in an input_required result, and of its answer in the retry's inputResponses. */
const CONFIRM_KEY = 'confirm';

/** What a retried 2026-07-28 request carries at CONFIRM_KEY; from the client, so read only through this. */
const carriedAnswer = z.union([z.object({ action: z.literal('accept'), content: z.unknown() }), z.object({ action: z.enum(['decline', 'cancel']) })]);

/** How a tool hands the executor the capability, and what it returns when the question must go back to the client. */
export interface Confirmation {
  /** Absent when the client cannot be asked (it declared no form elicitation). */
  confirm?: ConfirmCall;
  /**
   * 2026-07-28: when the executor ended the call because its question goes back to the client
   * (its outcome is `approval_pending`, the answer `asked`), the input_required result to return
   * instead; else null (the executor went past the question: it ran, or refused for another reason).
   */
  inputRequired(outcome: { ok: boolean; error?: { code: string } }): InputRequiredResult | null;
}

const CANNOT_ASK: Confirmation = { inputRequired: () => null };

/** The capability for this call, by the client's declared capabilities and the protocol era. */
export function confirmationFor(server: McpServer, ctx: ServerContext, era: ProtocolEra): Confirmation {
  if (era === 'legacy')
    return declaresFormElicitation(server.server.getClientCapabilities()) ? { confirm: askOnSession(ctx), inputRequired: () => null } : CANNOT_ASK;
  // 2026-07-28: each request declares the client's capabilities in its own envelope.
  const envelope: Record<string, unknown> = ctx.mcpReq.envelope ?? {};
  return declaresFormElicitation(envelope[CLIENT_CAPABILITIES_META_KEY]) ? askByResult(ctx) : CANNOT_ASK;
}

/** 2025-era session: an elicitation request on this call's own stream, and the call waits for it. */
function askOnSession(ctx: ServerContext): ConfirmCall {
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

/**
 * 2026-07-28: the answer this request carries (the client's retry after an input_required result),
 * when it comes back with the state of the very question the executor asks now
 * (shared/question-binding.ts); otherwise the question is kept, with its state, for the tool to
 * return. A yes sent with no question asked, or carried into another call, is not an answer.
 */
function askByResult(ctx: ServerContext): Confirmation {
  const carried = carriedAnswer.safeParse(ctx.mcpReq.inputResponses?.[CONFIRM_KEY]);
  const answer: ConfirmAnswer | null = !carried.success
    ? null
    : carried.data.action !== 'accept'
      ? carried.data.action
      : confirmed.safeParse(carried.data.content).success
        ? 'accept'
        : 'decline';
  const carriedState: unknown = ctx.mcpReq.requestState();
  let asked: { question: ConfirmQuestion; state: string } | null = null;
  return {
    confirm: async (question): Promise<ConfirmAnswer> => {
      const parts = questionParts(question);
      if (answer !== null && (await answersQuestion(carriedState, parts, question.record))) return answer;
      asked = { question, state: await questionState(parts, question.record) };
      return 'asked';
    },
    inputRequired: (outcome) =>
      asked === null || outcome.ok || outcome.error?.code !== 'approval_pending'
        ? null
        : inputRequired({
            inputRequests: { [CONFIRM_KEY]: inputRequired.elicit({ mode: 'form', message: confirmMessage(asked.question), requestedSchema }) },
            requestState: asked.state,
          }),
  };
}

/** Every part of a question the person reads or that decides what runs. */
function questionParts(question: ConfirmQuestion): unknown[] {
  return [question.host, question.guest, question.command, question.commandClass, question.rule, question.timeoutMs];
}
