/**
 * What the classifier has found so far for one command: the worst class, the programs it runs and
 * why. Reasons are kept short and made visible (no raw control characters reach a person).
 */
import { classRank, type CommandClass, type CommandClassification, worseClass } from './command-class.ts';
import { visibleText } from '../visible-text.ts';

const MAX_REASONS = 4;
const MAX_REASON_CHARS = 140;
const MAX_PROGRAMS = 50;

export class Verdict {
  private current: CommandClass = 'read-only';
  private readonly reasons: { class: CommandClass; text: string; order: number }[] = [];
  private readonly programs: string[] = [];

  get class(): CommandClass {
    return this.current;
  }

  raise(cls: CommandClass, reason: string): void {
    this.current = worseClass(this.current, cls);
    if (this.reasons.length < 64 && !this.reasons.some((r) => r.text === reason)) {
      this.reasons.push({ class: cls, text: reason, order: this.reasons.length });
    }
  }

  program(name: string): void {
    if (this.programs.length < MAX_PROGRAMS && !this.programs.includes(name)) this.programs.push(name);
  }

  result(): CommandClassification {
    const worst = this.reasons
      .filter((r) => r.class === this.current || classRank(r.class) > 0)
      .sort((a, b) => classRank(b.class) - classRank(a.class) || a.order - b.order)
      .slice(0, MAX_REASONS)
      .map((r) => shorten(visibleText(r.text)));
    return {
      class: this.current,
      programs: this.programs.map((p) => shorten(visibleText(p))),
      reasons: worst.length > 0 ? worst : ['only reads'],
    };
  }
}

function shorten(text: string): string {
  return text.length > MAX_REASON_CHARS ? `${text.slice(0, MAX_REASON_CHARS - 3)}...` : text;
}
