import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { quoteShellWord } from '../../../shared/shell-quote.ts';

const awkward = ['plain', 'with space', "it's", '"double"', '$(id)', '`id`', 'a;b', 'new\nline', '-rf', '*', '', "'", "\\'", '$HOME', '!!'];

describe('quoteShellWord', () => {
  it.each(awkward)('makes %j arrive literally in sh', (word) => {
    const printed = execFileSync('/bin/sh', ['-c', `printf '%s' ${quoteShellWord(word)}`]).toString();
    expect(printed).toBe(word);
  });

  it('keeps words apart in a command line', () => {
    const printed = execFileSync('/bin/sh', ['-c', `printf '<%s>' ${['a b', "c'd", '$(e)'].map(quoteShellWord).join(' ')}`]).toString();
    expect(printed).toBe("<a b><c'd><$(e)>");
  });

  it('refuses a NUL byte, which no shell word can carry', () => {
    expect(() => quoteShellWord('a\0b')).toThrow(/NUL/);
  });
});
