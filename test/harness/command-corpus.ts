/**
 * The command classes corpus (test/fixtures/command-classes.tsv), parsed. Pure: the Node tests and
 * the Workers-pool tests import the file's text with Vite's `?raw` and hand it here.
 */
import { expect, it } from 'vitest';
import { COMMAND_CLASSES, type ClassifyCommand, type CommandClass } from '../../shared/shell/command-class.ts';

export interface CorpusRow {
  line: number;
  command: string;
  expected: CommandClass;
  note: string;
}

function isCommandClass(value: string): value is CommandClass {
  return (COMMAND_CLASSES as readonly string[]).includes(value);
}

export function parseCorpus(text: string): CorpusRow[] {
  const rows: CorpusRow[] = [];
  text.split('\n').forEach((raw, index) => {
    if (raw === '' || raw.startsWith('#') || raw.startsWith('command\t')) return;
    const [cell = '', expected = '', note = ''] = raw.split('\t');
    if (!isCommandClass(expected)) throw new Error(`command-classes.tsv line ${index + 1}: unknown class "${expected}"`);
    const decoded: unknown = cell.startsWith('json:') ? JSON.parse(cell.slice(5)) : cell;
    if (typeof decoded !== 'string') throw new Error(`command-classes.tsv line ${index + 1}: json: must hold a string`);
    rows.push({ line: index + 1, command: decoded, expected, note });
  });
  return rows;
}

/** The row as a test title: visible, one line, bounded. */
export function rowTitle(row: CorpusRow): string {
  const shown = JSON.stringify(row.command);
  return `line ${row.line}: ${shown.length > 80 ? `${shown.slice(0, 77)}...` : shown} is ${row.expected}`;
}

/**
 * Commands that must never be read-only, built from every read-only row: the row followed by,
 * or wrapped around, something that writes. Fixes classes, not single inputs.
 */
export function derivedWriters(readOnly: readonly string[]): string[] {
  const tails = ['; rm -rf x', ' && touch y', ' || rm x', ' | sh', ' > /etc/x'];
  const out: string[] = [];
  for (const command of readOnly) {
    if (/[\n#]|<<|\\$/.test(command)) continue;
    for (const tail of tails) out.push(`${command}${tail}`);
    out.push(`rm x; ${command}`, `${command} $(rm x)`);
  }
  return out;
}

/**
 * The corpus as tests, the same in every runtime that classifies (Node, workerd): each row gets
 * its class, and no row that writes, runs something privileged or cannot be known is read-only.
 */
export function corpusTests(rows: CorpusRow[], classifyCommand: ClassifyCommand): void {
  it.each(rows.map((row) => [rowTitle(row), row] as const))('%s', async (_title, row) => {
    const result = await classifyCommand(row.command);
    expect(result.class, `${row.note} — reasons: ${result.reasons.join('; ')}`).toBe(row.expected);
  });

  it('classifies no mutating, privileged or unknown row as read-only', async () => {
    const wrong: string[] = [];
    for (const row of rows.filter((r) => r.expected !== 'read-only')) {
      if ((await classifyCommand(row.command)).class === 'read-only') wrong.push(row.command);
    }
    expect(wrong).toEqual([]);
  });
}
