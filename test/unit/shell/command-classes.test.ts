/**
 * The corpus (test/fixtures/command-classes.tsv) through the Node classifier (relay/shell/), as the
 * relay and stdio mode load it: every row gets its class, nothing that writes is read-only, and
 * everything the parser cannot parse is unknown.
 */
import { describe, expect, it } from 'vitest';
import corpusText from '../../fixtures/command-classes.tsv?raw';
import { corpusTests, derivedWriters, parseCorpus } from '../../harness/command-corpus.ts';
import { classifyCommand } from '../../../relay/shell/classifier.ts';
import { bashParser } from '../../../relay/shell/parser.ts';
import type { SyntaxNode } from '../../../shared/shell/syntax-tree.ts';

const rows = parseCorpus(corpusText);

function hasError(node: SyntaxNode): boolean {
  return node.type === 'ERROR' || node.missing || node.children.some(hasError);
}

describe('command classes corpus (Node)', () => {
  it('parses with offsets in UTF-16 units, as JavaScript strings count them', async () => {
    const parse = await bashParser();
    const unicode = parse('echo "ü€😀" x');
    expect(unicode.ok && unicode.root.children[0]?.children.map((node) => node.text)).toEqual(['echo', '"ü€😀"', 'x']);
  });

  it('holds at least 300 commands of every class', () => {
    expect(rows.length).toBeGreaterThanOrEqual(300);
    for (const cls of ['read-only', 'mutating', 'privileged', 'unknown'] as const) {
      expect(rows.filter((row) => row.expected === cls).length).toBeGreaterThanOrEqual(40);
    }
  });

  corpusTests(rows, classifyCommand);

  it('never calls a read-only row read-only once something that writes is added to it', async () => {
    const readOnly = rows.filter((row) => row.expected === 'read-only').map((row) => row.command);
    const writers = derivedWriters(readOnly);
    expect(writers.length).toBeGreaterThan(500);
    const wrong: string[] = [];
    for (const command of writers) if ((await classifyCommand(command)).class === 'read-only') wrong.push(command);
    expect(wrong).toEqual([]);
  });

  it('calls every command the parser cannot parse unknown, including every row cut short', async () => {
    const parse = await bashParser();
    const failures: string[] = [];
    let checked = 0;
    for (const row of rows) {
      // Every prefix of every row: unterminated quotes, substitutions, here-docs, lists.
      for (let end = 1; end <= row.command.length; end += 1) {
        const text = row.command.slice(0, end);
        const parsed = parse(text);
        if (parsed.ok && !hasError(parsed.root)) continue;
        checked += 1;
        const result = await classifyCommand(text);
        if (result.class !== 'unknown') failures.push(text);
      }
    }
    expect(checked).toBeGreaterThan(1_000);
    expect(failures).toEqual([]);
  });

  it('keeps reasons short and free of raw control characters', async () => {
    for (const row of rows) {
      const result = await classifyCommand(row.command);
      expect(result.reasons.length).toBeGreaterThan(0);
      expect(result.reasons.length).toBeLessThanOrEqual(4);
      for (const reason of [...result.reasons, ...result.programs]) {
        expect(reason.length).toBeLessThanOrEqual(140);
        expect(reason).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
      }
    }
  });
});
