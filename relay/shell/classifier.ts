/** Command classification in Node: the relay and stdio mode (tree-sitter-bash compiled from node_modules). */
import type { ClassifyCommand, CommandClassification } from '../../shared/shell/command-class.ts';
import { classifyWith } from '../../shared/shell/classify.ts';
import { bashParser } from './parser.ts';

export const classifyCommand: ClassifyCommand = async (command: string): Promise<CommandClassification> => {
  return classifyWith(await bashParser(), command);
};
