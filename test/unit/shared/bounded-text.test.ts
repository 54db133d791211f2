import { describe, expect, it } from 'vitest';
import { boundText, MAX_MESSAGE_CHARS } from '../../../shared/bounded-text.ts';

describe('boundText', () => {
  it('leaves text that fits untouched', () => {
    expect(boundText('No such file: /etc/x', 100)).toBe('No such file: /etc/x');
    expect(boundText('a'.repeat(MAX_MESSAGE_CHARS))).toHaveLength(MAX_MESSAGE_CHARS);
  });

  it('cuts longer text to the limit with a visible count of what was left out', () => {
    const text = `No such file: /${'p'.repeat(20_000)}`;
    const bounded = boundText(text);
    expect(bounded.length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS);
    const omitted = Number(/\[… (\d+) more characters\]$/.exec(bounded)?.[1]);
    expect(bounded.length - `[… ${omitted} more characters]`.length + omitted).toBe(text.length);
    expect(bounded.startsWith('No such file: /ppp')).toBe(true);
  });

  it('never leaves half of a surrogate pair at the cut', () => {
    for (let max = 30; max < 40; max += 1) {
      const bounded = boundText('😀'.repeat(100), max);
      expect(bounded.length).toBeLessThanOrEqual(max);
      // encodeURIComponent throws on a lone surrogate.
      expect(() => encodeURIComponent(bounded)).not.toThrow();
    }
  });

  it('stays within a tiny limit', () => {
    expect(boundText('x'.repeat(100), 5).length).toBeLessThanOrEqual(5);
  });
});
