/**
 * The stdio mode's own confirmation: the config (relay/config.ts `confirm`, `confirm_fallback`)
 * can make commands of some classes wait for the local user's yes, asked through the client's
 * elicitation (the tool hands the executor a ConfirmCall only when the client can be asked). A
 * client that cannot be asked gets the fallback: refused (the default), or run. The class comes
 * from the same classifier as ssh_check_command (relay/shell/classifier.ts); one that cannot be
 * classified is `unknown`, which `privileged` covers as in the Worker's command rules.
 *
 * Every decision is logged (stderr) with the host and class, never the command (relay/log.ts).
 */
import type { ConfirmCall } from '../shared/confirm-call.ts';
import { failure, success, type Outcome } from '../shared/errors.ts';
import type { ClassifyCommand, CommandClass, CommandClassification } from '../shared/shell/command-class.ts';
import type { ConfirmRule } from './config.ts';
import { log } from './log.ts';

export interface LocalConfirmRequest {
  host: string;
  guest: { kind: 'lxc' | 'qemu'; id: string } | null;
  command: string;
  timeoutMs: number;
  confirm?: ConfirmCall;
}

async function classOf(classify: ClassifyCommand, command: string): Promise<CommandClass> {
  let classification: CommandClassification;
  try {
    classification = await classify(command);
  } catch {
    return 'unknown';
  }
  return classification.class;
}

function needsConfirmation(rule: ConfirmRule, commandClass: CommandClass): boolean {
  return rule.classes.includes(commandClass) || (commandClass === 'unknown' && rule.classes.includes('privileged'));
}

/** Whether the command may run on `request.host` under `rule`: asks the user when it must; refused otherwise. */
export async function confirmLocally(
  rule: ConfirmRule | undefined,
  classify: ClassifyCommand,
  request: LocalConfirmRequest,
  signal: AbortSignal,
): Promise<Outcome<void>> {
  if (!rule || rule.classes.length === 0) return success(undefined);
  const commandClass = await classOf(classify, request.command);
  if (!needsConfirmation(rule, commandClass)) return success(undefined);
  const why = `the stdio config asks for your confirmation of ${commandClass} commands on ${request.host} (confirm: ${rule.classes.join(', ')})`;
  if (!request.confirm) {
    log('info', 'confirmation needed but the client cannot be asked', { host: request.host, class: commandClass, fallback: rule.fallback });
    if (rule.fallback === 'run') return success(undefined);
    return failure(
      'approval_refused',
      `Not run: ${why}, and this client cannot be asked during a call (it did not declare elicitation). Use a client that supports elicitation, or change confirm / confirm_fallback in the config.`,
    );
  }
  const answer = await request.confirm(
    { host: request.host, guest: request.guest, command: request.command, commandClass, rule: 'the stdio config (confirm)', timeoutMs: request.timeoutMs },
    signal,
  );
  log('info', 'confirmation answered', { host: request.host, class: commandClass, answer });
  switch (answer) {
    case 'accept':
      return success(undefined);
    case 'decline':
    case 'cancel':
      return failure('approval_refused', `Not run: you ${answer === 'decline' ? 'declined' : 'dismissed'} the confirmation (${why}).`);
    case 'unanswered':
      return failure('approval_refused', `Not run: ${why}, and no answer came from the client in time.`);
    case 'asked':
      // 2026-07-28: the tool returns the question to the client, which calls again with the answer.
      return failure('approval_pending', `Not run yet: ${why}; the question went back to the client, and its next call carries the answer.`);
    default: {
      const unhandled: never = answer;
      return failure('internal', `Unknown confirmation answer ${String(unhandled)}.`);
    }
  }
}
