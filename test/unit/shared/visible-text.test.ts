import { describe, expect, it } from 'vitest';
import { jsonSafeText, safeResultText, visibleText } from '../../../shared/visible-text.ts';

describe('visibleText', () => {
  it('shows terminal escape sequences as visible escapes', () => {
    expect(visibleText('\u001b[31mred\u001b[0m')).toBe('\\x1b[31mred\\x1b[0m');
    expect(visibleText('\u001b]0;owned\u0007')).toBe('\\x1b]0;owned\\x07');
  });

  it('keeps newlines and tabs, escapes carriage returns, backspaces and NUL', () => {
    expect(visibleText('a\tb\nc\r\nd\be\u0000')).toBe('a\tb\nc\\r\nd\\x08e\\x00');
  });

  it('escapes DEL, every C1 control and the bidirectional override characters', () => {
    expect(visibleText('\u007f\u0080\u009b\u009f')).toBe('\\x7f\\x80\\x9b\\x9f');
    expect(visibleText('abc\u202edef\u2066x\u2069')).toBe('abc\\u{202e}def\\u{2066}x\\u{2069}');
  });

  it('leaves ordinary text, including non-ASCII letters and emoji, unchanged', () => {
    const text = 'Grüße, 東京 🚀 — 100% done\n\tindented';
    expect(visibleText(text)).toBe(text);
  });

  it('leaves no character a terminal acts on, whatever the input', () => {
    let all = '';
    for (let code = 0; code < 0x2100; code += 1) all += String.fromCharCode(code);
    expect(visibleText(all)).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
  });
});

describe('jsonSafeText', () => {
  it('parses to exactly the same value while holding no raw DEL, C1 or bidi control', () => {
    const value = { stdout: '\u001b[31m\u009b2J\u007f\u202e', n: 1 };
    const text = jsonSafeText(JSON.stringify(value, null, 2));
    expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e]/);
    expect(JSON.parse(text)).toEqual(value);
  });
});

describe('safeResultText', () => {
  it('keeps a json result exact and makes any other text visible, even when json was asked for', () => {
    const json = JSON.stringify({ stdout: '\u001b[1m' });
    expect(JSON.parse(safeResultText(json, true))).toEqual({ stdout: '\u001b[1m' });
    expect(safeResultText('Error [path_not_found]: /tmp/\u001b[2J', true)).toBe('Error [path_not_found]: /tmp/\\x1b[2J');
    // Text that only looks like JSON when the caller asked for text is still made visible.
    expect(safeResultText('{"a":"\u001b"}', false)).toBe('{"a":"\\x1b"}');
  });
});
