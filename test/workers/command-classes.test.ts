/**
 * The classifier in real workerd, loaded as the Worker loads it (worker/shell/): tree-sitter's
 * runtime and the bash grammar imported as compiled WebAssembly modules, nothing compiled at run
 * time. The whole corpus (test/fixtures/command-classes.tsv) must classify exactly as in Node. The
 * answers for recent commands are kept, bounded, and cannot be changed by whoever gets them.
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

describe('the answers kept for recent commands', () => {
  // Texts no other test classifies: the kept answers live as long as the isolate.
  const unique = (label: string): string => `echo ${label}-${crypto.randomUUID()}`;

  it('are the same for a repeated command, and none can be changed', async () => {
    const command = `${unique('repeated')} > notes.txt`;
    const first = await classifyCommand(command);
    expect(await classifyCommand(command)).toBe(first);
    expect(first.class).toBe('mutating');
    expect(() => ((first as { class: string }).class = 'read-only')).toThrow(TypeError);
    expect(() => first.reasons.push('tampered')).toThrow(TypeError);
    expect(() => first.programs.push('tampered')).toThrow(TypeError);
    expect((await classifyCommand(command)).class).toBe('mutating');
  });

  it('keep 512 commands, the least recently used out first, and no text over 2,000 characters', async () => {
    const touched = unique('touched');
    const untouched = unique('untouched');
    const keptTouched = await classifyCommand(touched);
    const keptUntouched = await classifyCommand(untouched);
    for (let index = 0; index < 511; index += 1) {
      await classifyCommand(unique(`filler-${index}`));
      // Used again half-way: it moves to the newest end.
      if (index === 255) expect(await classifyCommand(touched)).toBe(keptTouched);
    }
    // 513 commands since `untouched`: it was the oldest, and left.
    expect(await classifyCommand(touched)).toBe(keptTouched);
    const again = await classifyCommand(untouched);
    expect(again).not.toBe(keptUntouched);
    expect(again).toEqual(keptUntouched);
    const long = `${unique('long')} ${'x'.repeat(2_000)}`;
    expect(await classifyCommand(long)).not.toBe(await classifyCommand(long));
  });
});
