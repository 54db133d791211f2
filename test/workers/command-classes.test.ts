/**
 * The classifier in real workerd, loaded as the Worker loads it (worker/shell/): tree-sitter's
 * runtime and the bash grammar imported as compiled WebAssembly modules, nothing compiled at run
 * time. The whole corpus (test/fixtures/command-classes.tsv) must classify exactly as in Node.
 */
import { describe, expect, it } from 'vitest';
import corpusText from '../fixtures/command-classes.tsv?raw';
import { corpusTests, parseCorpus } from '../harness/command-corpus.ts';
import { classifyCommand } from '../../worker/shell/classifier.ts';
import { bashParser } from '../../worker/shell/parser.ts';

const rows = parseCorpus(corpusText);

describe('command classes corpus (workerd)', () => {
  it('loads the parser from imported WebAssembly modules and parses', async () => {
    const parse = await bashParser();
    const parsed = parse('ls -la | grep "$(rm x)" > /tmp/o');
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.root.children[0]?.type).toBe('redirected_statement');
    // Offsets are UTF-16 units, as JavaScript strings count them.
    const unicode = parse('echo "ü€😀" x');
    expect(unicode.ok && unicode.root.children[0]?.children.map((node) => node.text)).toEqual(['echo', '"ü€😀"', 'x']);
  });

  corpusTests(rows, classifyCommand);
});
