/**
 * What a shell word becomes after quote removal, when that is certain. A word is *literal* when
 * the shell turns it into exactly one known string (`r''m` → `rm`, `\rm` → `rm`, `$'\x72m'` → `rm`);
 * anything that expands (globs, brace expansion, `$x`, `$(...)`, arithmetic) may become any number
 * of arbitrary words, and process substitution becomes one `/dev/fd/N` path.
 */
import type { SyntaxNode } from './syntax-tree.ts';

export type Arg =
  | { kind: 'literal'; value: string }
  | { kind: 'expanding' }
  /** `<(...)` / `>(...)`: one path to a pipe, never an option; its command is classified where it stands. */
  | { kind: 'procsub' };

export const EXPANDING: Arg = { kind: 'expanding' };

/** The word as an argument. */
export function argOf(node: SyntaxNode): Arg {
  if (node.type === 'process_substitution') return { kind: 'procsub' };
  const value = literalValue(node);
  return value === null ? EXPANDING : { kind: 'literal', value };
}

/** The single string `node` becomes, or null when it may expand. */
export function literalValue(node: SyntaxNode): string | null {
  switch (node.type) {
    case 'word':
      return unquotedWord(node.text, true);
    case 'number':
      return /^[-+]?[0-9]+$/.test(node.text) ? node.text : null;
    case 'raw_string':
      return node.text.slice(1, -1);
    case 'string':
      return doubleQuoted(node);
    case 'ansi_c_string':
      return ansiC(node.text.slice(2, -1));
    case 'concatenation':
      return concatenation(node);
    default:
      return null;
  }
}

/** Unquoted text: glob characters, `$`, backticks or brace expansion make it expanding. */
function unquotedWord(text: string, alone: boolean): string | null {
  let out = '';
  for (let i = 0; i < text.length; i += 1) {
    const char = text[i] ?? '';
    if (char === '\\') {
      const next = text[i + 1];
      if (next === undefined) return null;
      i += 1;
      if (next !== '\n') out += next;
      continue;
    }
    if (char === '*' || char === '?' || char === '$' || char === '`') return null;
    // `[` starts a bracket glob only with a closing `]`; `[` alone is the test command.
    if (char === '[' && text.indexOf(']', i + 1) !== -1) return null;
    if ((char === '{' || char === '}') && !(alone && text === '{}')) {
      if (!alone || /\{[^}]*(,|\.\.)[^}]*\}/.test(text)) return null;
    }
    out += char;
  }
  return out;
}

function doubleQuoted(node: SyntaxNode): string | null {
  let out = '';
  for (const child of node.children) {
    if (child.type === '"') continue;
    if (child.type !== 'string_content') return null;
    const text = child.text;
    for (let i = 0; i < text.length; i += 1) {
      const char = text[i] ?? '';
      if (char === '$' || char === '`') return null;
      if (char === '\\') {
        const next = text[i + 1];
        if (next === '$' || next === '`' || next === '"' || next === '\\') {
          out += next;
          i += 1;
          continue;
        }
        if (next === '\n') {
          i += 1;
          continue;
        }
      }
      out += char;
    }
  }
  return out;
}

function concatenation(node: SyntaxNode): string | null {
  // Brace expansion spans parts (`{a,b}` is `{` `a,b` `}` to tree-sitter), so it is looked for in the whole text.
  if (node.children.some((child) => child.type === 'word' && /[{}]/.test(child.text)) && /\{[^}\s]*(,|\.\.)[^}\s]*\}/.test(node.text)) return null;
  // tree-sitter splits a bracket glob into words too (`[ab]` is `[` `ab` `]`): an unquoted `[` with an unquoted `]` after it globs.
  const words = node.children.filter((child) => child.type === 'word').map((child) => child.text);
  const open = words.findIndex((text) => text.includes('['));
  if (
    open !== -1 &&
    words
      .slice(open)
      .join('')
      .indexOf(']', (words[open] ?? '').indexOf('[')) !== -1
  )
    return null;
  let out = '';
  for (const child of node.children) {
    const value = child.type === 'word' ? unquotedWord(child.text, true) : literalValue(child);
    if (value === null) return null;
    out += value;
  }
  return out;
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  a: '\u0007',
  b: '\b',
  e: '\u001b',
  E: '\u001b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
  "'": "'",
  '"': '"',
  '?': '?',
};

/** Bash's `$'...'` escapes; anything not understood here (e.g. `\c`) leaves the word non-literal. */
function ansiC(body: string): string | null {
  let out = '';
  for (let i = 0; i < body.length; i += 1) {
    const char = body[i] ?? '';
    if (char !== '\\') {
      out += char;
      continue;
    }
    const next = body[i + 1];
    if (next === undefined) return null;
    const simple = SIMPLE_ESCAPES[next];
    if (simple !== undefined) {
      out += simple;
      i += 1;
      continue;
    }
    const hex = /^x([0-9a-fA-F]{1,2})/.exec(body.slice(i + 1));
    const octal = /^([0-7]{1,3})/.exec(body.slice(i + 1));
    const unicode = /^(?:u([0-9a-fA-F]{1,4})|U([0-9a-fA-F]{1,8}))/.exec(body.slice(i + 1));
    if (hex?.[1] !== undefined) {
      out += String.fromCharCode(parseInt(hex[1], 16));
      i += hex[0].length;
    } else if (octal?.[1] !== undefined) {
      out += String.fromCharCode(parseInt(octal[1], 8) & 0xff);
      i += octal[0].length;
    } else if (unicode !== null) {
      const code = parseInt(unicode[1] ?? unicode[2] ?? '', 16);
      if (!(code >= 0 && code <= 0x10ffff)) return null;
      out += String.fromCodePoint(code);
      i += unicode[0].length;
    } else {
      return null;
    }
  }
  return out;
}
