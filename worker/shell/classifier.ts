/** Command classification in the Worker (tree-sitter-bash from imported WebAssembly modules), with the answers for recent commands kept. */
import type { ClassifyCommand, CommandClassification } from '../../shared/shell/command-class.ts';
import { classifyWith } from '../../shared/shell/classify.ts';
import { bashParser } from './parser.ts';

/**
 * Commands are classified again and again with the same text (an assistant checking the same
 * service, a retry after an approval): the answer depends on the text alone, so this isolate keeps
 * the latest ones, least recently used out first. Bounded in count and text length (about 2 MB of
 * text at most, as strings hold it).
 */
const KEPT_COMMANDS = 512;
const KEPT_TEXT_CHARS = 2_000;
const kept = new Map<string, CommandClassification>();

export const classifyCommand: ClassifyCommand = async (command: string): Promise<CommandClassification> => {
  const known = kept.get(command);
  if (known !== undefined) {
    // Map keeps insertion order: a hit moves to the newest end.
    kept.delete(command);
    kept.set(command, known);
    return known;
  }
  const classification = frozen(classifyWith(await bashParser(), command));
  if (command.length <= KEPT_TEXT_CHARS) {
    kept.set(command, classification);
    if (kept.size > KEPT_COMMANDS) kept.delete(kept.keys().next().value as string);
  }
  return classification;
};

/** Every caller shares a kept answer: none may change it. */
function frozen(classification: CommandClassification): CommandClassification {
  Object.freeze(classification.programs);
  Object.freeze(classification.reasons);
  return Object.freeze(classification);
}
