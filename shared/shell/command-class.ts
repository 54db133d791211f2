/**
 * What a command does, as policy sees it: the words every part shares. The classifier
 * (shared/shell/classify.ts, over a real shell parser) puts each command in one class; command
 * rules in the team's policy (worker/team/policy.ts) match on classes and program names.
 *
 * Ordered from least to most risky; a command's class is the most risky of everything in it.
 * `unknown` is anything that cannot be classified with certainty, and counts as privileged.
 */
import { quoteShellWord } from '../shell-quote.ts';

export const COMMAND_CLASSES = ['read-only', 'mutating', 'privileged', 'unknown'] as const;
export type CommandClass = (typeof COMMAND_CLASSES)[number];

export interface CommandClassification {
  class: CommandClass;
  /** Every program the command would run (basenames, in order of appearance, without duplicates), as far as the parser can tell. */
  programs: string[];
  /** Why it is in its class, most important first (e.g. "writes with > to /etc/motd", "runs rm"); at most a few short lines. */
  reasons: string[];
}

/** Classifies one command; each runtime supplies one (the parser is WebAssembly, loaded its own way). */
export type ClassifyCommand = (command: string) => Promise<CommandClassification>;

const RANK: Record<CommandClass, number> = { 'read-only': 0, mutating: 1, privileged: 2, unknown: 3 };

export function classRank(value: CommandClass): number {
  return RANK[value];
}

/** The more risky of two classes. */
export function worseClass(a: CommandClass, b: CommandClass): CommandClass {
  return RANK[a] >= RANK[b] ? a : b;
}

/**
 * What command rules decide for one call (worker/team/policy.ts decideCommand): run it, refuse it,
 * or hold it for a person: `approve` (an approver: an admin or a named group) or `confirm` (the
 * requester themself). `rule` names the rule that decided (its index in commandRules and its note).
 */
export type CommandDecision =
  | { effect: 'allow'; rule: RuleRef | null }
  | { effect: 'deny'; rule: RuleRef }
  | { effect: 'approve'; rule: RuleRef; approvers: string[] }
  | { effect: 'confirm'; rule: RuleRef };

export interface RuleRef {
  index: number;
  note: string | null;
}

/**
 * What a command given with `sudo: true` is classified as: what runs on the host, `sudo sh -c
 * COMMAND` (privileged at least). One text for the Worker's rules, the stdio confirmation and the
 * dry run, so they can never disagree about a sudo call.
 */
export function underSudoText(command: string): string {
  return `sudo sh -c ${quoteShellWord(command)}`;
}
