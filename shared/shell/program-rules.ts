/**
 * Programs whose grammar is too irregular for the table's data (shared/shell/command-table.ts
 * names them with `special`): find's expressions, sed and awk programs, shells given text, eval,
 * xargs, env, and a few builtins. Each either settles the class or hands an inner command back to
 * the classifier; anything not understood is `unknown`.
 */
import { applyRule, type ClassifyContext, classifyArgv, classifyText, excerpt } from './classify.ts';
import type { SpecialGrammar } from './command-table.ts';
import { HARMLESS_ENV } from './command-table.ts';
import { type Arg, EXPANDING } from './shell-words.ts';
import { writeTarget } from './write-targets.ts';

export function applySpecial(grammar: SpecialGrammar, label: string, args: readonly Arg[], context: ClassifyContext): void {
  switch (grammar) {
    case 'find':
      return find(label, args, context);
    case 'sed':
      return sed(label, args, context);
    case 'awk':
      return awk(label, args, context);
    case 'shell':
      return shell(label, args, context);
    case 'eval':
      return evalArgs(label, args, context);
    case 'xargs':
      return xargs(label, args, context);
    case 'env':
      return env(label, args, context);
    case 'command':
      return commandBuiltin(label, args, context);
    case 'set':
      return set(label, args, context);
    case 'cd':
      return requireLiteral(label, args, context);
    case 'read':
      return read(label, args, context);
    case 'printf':
      return printf(label, args, context);
    case 'exec':
      return exec(label, args, context);
    case 'watch':
      return watch(label, args, context);
    case 'flock':
      return flock(label, args, context);
    case 'su':
      return su(label, args, context);
    case 'runuser':
      return runuser(label, args, context);
    case 'busybox':
      return busybox(label, args, context);
    case 'tar':
      return tar(label, args, context);
    case 'sysctl':
      return sysctl(label, args, context);
    case 'date':
      return date(label, args, context);
    case 'service':
      return service(label, args, context);
    default: {
      const unreachable: never = grammar;
      return context.verdict.raise('unknown', `${label}: ${String(unreachable)}`);
    }
  }
}

function literals(args: readonly Arg[]): string[] | null {
  const out: string[] = [];
  for (const arg of args) {
    if (arg.kind !== 'literal') return null;
    out.push(arg.value);
  }
  return out;
}

function unknown(context: ClassifyContext, reason: string): void {
  context.verdict.raise('unknown', reason);
}

function requireLiteral(label: string, args: readonly Arg[], context: ClassifyContext): void {
  if (literals(args) === null) unknown(context, `${label}: an argument only known when it runs`);
}

/** Runs literal shell text one level deeper. */
function nested(text: string, context: ClassifyContext): void {
  classifyText(text, { ...context, depth: context.depth + 1 });
}

const FIND_WRITES = new Set(['-fprint', '-fprint0', '-fprintf', '-fls']);
const FIND_EXEC = new Set(['-exec', '-execdir', '-ok', '-okdir']);

function find(label: string, args: readonly Arg[], context: ClassifyContext): void {
  const { verdict } = context;
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i];
    if (arg === undefined) break;
    if (arg.kind !== 'literal') {
      unknown(context, `${label}: an argument only known when it runs could be -delete or -exec`);
      continue;
    }
    const value = arg.value;
    if (value === '-delete') verdict.raise('mutating', `${label} -delete deletes what it finds`);
    if (FIND_WRITES.has(value)) {
      const found = writeTarget(args[i + 1] ?? EXPANDING, context.cwdKnown, `${label} ${value} writes`);
      verdict.raise(found?.class ?? 'mutating', found?.reason ?? `${label} ${value} writes a file`);
    }
    if (FIND_EXEC.has(value)) {
      const end = args.findIndex((next, at) => at > i && next.kind === 'literal' && (next.value === ';' || next.value === '+'));
      if (end === -1) return unknown(context, `${label} ${value} without its terminating ; or +`);
      // {} is a found path: any name at all.
      const inner = args.slice(i + 1, end).map((word) => (word.kind === 'literal' && word.value.includes('{}') ? EXPANDING : word));
      classifyArgv(inner, context);
      i = end;
    }
  }
}

/** sed is read-only only for printing scripts: addresses and p d q n s///flags (no e, w, r, s///e, s///w). */
function sed(label: string, args: readonly Arg[], context: ClassifyContext): void {
  const { verdict } = context;
  const scripts: string[] = [];
  const files: Arg[] = [];
  let inPlace = false;
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i];
    if (arg === undefined) break;
    if (arg.kind !== 'literal') {
      if (scripts.length === 0) return unknown(context, `${label}: the script is only known when it runs`);
      files.push(arg);
      continue;
    }
    const value = arg.value;
    if (value === '-e' || value === '--expression') {
      const script = args[i + 1];
      if (script?.kind !== 'literal') return unknown(context, `${label}: the script is only known when it runs`);
      scripts.push(script.value);
      i += 1;
    } else if (value.startsWith('--expression=')) {
      scripts.push(value.slice('--expression='.length));
    } else if (value === '-i' || value.startsWith('--in-place') || /^-[nEsrzu]*i/.test(value)) {
      inPlace = true;
    } else if (
      /^-[nEsrzu]+$/.test(value) ||
      ['--quiet', '--silent', '--regexp-extended', '--posix', '--separate', '--null-data', '--unbuffered', '--debug', '--sandbox'].includes(value)
    ) {
      continue;
    } else if (value === '-l' || value === '--line-length') {
      i += 1;
    } else if (value.startsWith('-') && value !== '-') {
      return unknown(context, `${label}: option ${excerpt(value)} is not understood (-f reads a script from a file)`);
    } else if (scripts.length === 0) {
      scripts.push(value);
    } else {
      files.push(arg);
    }
  }
  if (scripts.length === 0) return unknown(context, `${label} without a script`);
  for (const script of scripts) {
    if (!printingScript(script)) verdict.raise('unknown', `${label}: the script "${excerpt(script)}" is not a plain print/substitute script`);
  }
  if (inPlace) {
    verdict.raise('mutating', `${label} -i edits files in place`);
    for (const file of files) {
      const found = writeTarget(file, context.cwdKnown, `${label} -i changes`);
      if (found !== null) verdict.raise(found.class, found.reason);
    }
  }
}

const SED_ADDRESS = String.raw`(?:[0-9]+(?:~[0-9]+)?|\$|/(?:[^/\\\n]|\\.)*/I?)`;
const SED_COMMAND = new RegExp(
  String.raw`^\s*(?:${SED_ADDRESS}(?:\s*,\s*(?:${SED_ADDRESS}|\+[0-9]+|~[0-9]+))?)?\s*!?\s*` +
    String.raw`(?:[pdqQnNPDgGhHxl=]|s(.)(?:(?!\1)[^\\\n]|\\.)*\1(?:(?!\1)[^\\\n]|\\.)*\1[gpiImM0-9]*|y(.)(?:(?!\2)[^\\\n]|\\.)*\2(?:(?!\2)[^\\\n]|\\.)*\2)\s*$`,
);

function printingScript(script: string): boolean {
  if (script.length > 2_000) return false;
  return script.split(/[;\n]/).every((part) => part.trim() === '' || SED_COMMAND.test(part));
}

/** awk is read-only only for a literal program without system(), pipes, redirection, getline or extensions. */
function awk(label: string, args: readonly Arg[], context: ClassifyContext): void {
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i];
    if (arg === undefined) break;
    if (arg.kind !== 'literal') return unknown(context, `${label}: the program is only known when it runs`);
    const value = arg.value;
    if (value === '-F' || value === '-v') {
      i += 1;
      continue;
    }
    if (/^-[Fv]./.test(value) || value === '--') continue;
    if (value.startsWith('-')) return unknown(context, `${label}: option ${excerpt(value)} is not understood (-f reads a program from a file)`);
    if (/system|getline|close|fflush|[|>@]/.test(value)) {
      return unknown(context, `${label}: the program "${excerpt(value)}" may run commands or write files`);
    }
    // Everything after the program is a file or a var=value assignment: read only.
    return;
  }
  unknown(context, `${label} without a program`);
}

const SHELL_FLAGS = /^[-+][eEuxvnlhBCfaPTkmptbr]*c?[eEuxvnlhBCfaPTkmptbr]*$/;

/** sh -c 'text': the text is parsed like the command itself; a shell reading a file or its input is unknown. */
function shell(label: string, args: readonly Arg[], context: ClassifyContext): void {
  let command = false;
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i];
    if (arg === undefined) break;
    if (arg.kind !== 'literal') return unknown(context, `${label}: its script is only known when it runs`);
    const value = arg.value;
    if (value === '-o' || value === '+o') {
      i += 1;
      continue;
    }
    if (value === '--') continue;
    if (SHELL_FLAGS.test(value) && value.length > 1) {
      if (value.includes('c')) command = true;
      continue;
    }
    if (value.startsWith('-')) return unknown(context, `${label}: option ${excerpt(value)} is not understood`);
    if (!command) return unknown(context, `${label} runs a script file or its input, which the classifier cannot see`);
    return nested(value, context);
  }
  unknown(context, `${label} without -c reads commands from its input, which the classifier cannot see`);
}

function evalArgs(label: string, args: readonly Arg[], context: ClassifyContext): void {
  const words = literals(args);
  if (words === null) return unknown(context, `${label}: its text is only known when it runs`);
  nested(words.join(' '), context);
}

const XARGS_FLAGS = new Set(['-0', '--null', '-r', '--no-run-if-empty', '-t', '--verbose', '-x', '--exit', '--process-slot-var']);
const XARGS_VALUED = new Set([
  '-a',
  '--arg-file',
  '-d',
  '--delimiter',
  '-E',
  '-e',
  '--eof',
  '-I',
  '-i',
  '--replace',
  '-L',
  '-l',
  '--max-lines',
  '-n',
  '--max-args',
  '-P',
  '--max-procs',
  '-s',
  '--max-chars',
]);

/** xargs CMD: CMD runs with more arguments from the input, each any word at all. */
function xargs(label: string, args: readonly Arg[], context: ClassifyContext): void {
  let i = 0;
  let replace: string | null = null;
  for (; i < args.length; i += 1) {
    const arg = args[i];
    if (arg === undefined) break;
    if (arg.kind !== 'literal') return unknown(context, `${label}: an argument only known when it runs`);
    const value = arg.value;
    if (!value.startsWith('-') || value === '-') break;
    if (value === '--') {
      i += 1;
      break;
    }
    const name = value.startsWith('--') ? (value.split('=')[0] ?? value) : value.slice(0, 2);
    if (XARGS_FLAGS.has(value)) continue;
    if (XARGS_VALUED.has(name)) {
      const attached = value.startsWith('--') ? value.includes('=') : value.length > 2;
      const given = attached
        ? value.startsWith('--')
          ? value.slice(value.indexOf('=') + 1)
          : value.slice(2)
        : args[i + 1]?.kind === 'literal'
          ? (args[i + 1] as { value: string }).value
          : '';
      if (name === '-I' || name === '--replace' || name === '-i') replace = given === '' ? '{}' : given;
      if (!attached) i += 1;
      continue;
    }
    return unknown(context, `${label}: option ${excerpt(value)} is not in the command table`);
  }
  const inner = args.slice(i);
  if (inner.length === 0) return classifyArgv([{ kind: 'literal', value: 'echo' }, EXPANDING], context);
  const marker = replace;
  const words = marker === null ? inner : inner.map((word) => (word.kind === 'literal' && word.value.includes(marker) ? EXPANDING : word));
  classifyArgv([...words, EXPANDING], context);
}

/** env [-i] [-u NAME] [NAME=value]... [CMD...]: names as for assignments, then the command. */
function env(label: string, args: readonly Arg[], context: ClassifyContext): void {
  let i = 0;
  for (; i < args.length; i += 1) {
    const arg = args[i];
    if (arg === undefined) break;
    if (arg.kind !== 'literal') return unknown(context, `${label}: an argument only known when it runs`);
    const value = arg.value;
    if (value === '-i' || value === '--ignore-environment' || value === '-0' || value === '--null' || value === '-') continue;
    if (value === '-u' || value === '--unset') {
      i += 1;
      continue;
    }
    if (value.startsWith('--unset=') || /^-u./.test(value)) continue;
    if (value === '-C' || value === '--chdir' || value.startsWith('--chdir=')) {
      context.cwdKnown = false;
      if (value === '-C' || value === '--chdir') i += 1;
      continue;
    }
    if (value === '--') {
      i += 1;
      break;
    }
    if (value.startsWith('-')) return unknown(context, `${label}: option ${excerpt(value)} is not understood (-S splits a string into a command)`);
    const equals = value.indexOf('=');
    if (equals > 0) {
      const name = value.slice(0, equals);
      if (!HARMLESS_ENV.test(name)) unknown(context, `${label} sets ${excerpt(name)}, which can change what runs`);
      continue;
    }
    break;
  }
  const inner = args.slice(i);
  if (inner.length > 0) classifyArgv(inner, context);
}

function commandBuiltin(label: string, args: readonly Arg[], context: ClassifyContext): void {
  const first = args[0];
  if (first?.kind === 'literal' && (first.value === '-v' || first.value === '-V')) return requireLiteral(label, args, context);
  const inner = first?.kind === 'literal' && first.value === '-p' ? args.slice(1) : args;
  const rest = inner[0]?.kind === 'literal' && inner[0].value === '--' ? inner.slice(1) : inner;
  if (rest.length > 0) classifyArgv(rest, context);
}

/** set -e, -u, -x, -o pipefail and their + forms only; anything else changes the shell in ways not followed here. */
function set(label: string, args: readonly Arg[], context: ClassifyContext): void {
  const words = literals(args);
  if (words === null) return unknown(context, `${label}: an argument only known when it runs`);
  for (let i = 0; i < words.length; i += 1) {
    const word = words[i] ?? '';
    if (/^[-+][euxv]+$/.test(word)) continue;
    if (/^[-+][euxv]*o$/.test(word) && words[i + 1] === 'pipefail') {
      i += 1;
      continue;
    }
    return unknown(context, `${label} ${excerpt(word)} changes shell state the classifier does not follow`);
  }
}

/** read NAME...: plain lower-case names only (a subscript like a[$(...)] runs code; PATH and IFS change what runs). */
function read(label: string, args: readonly Arg[], context: ClassifyContext): void {
  const words = literals(args);
  if (words === null) return unknown(context, `${label}: an argument only known when it runs`);
  for (let i = 0; i < words.length; i += 1) {
    const word = words[i] ?? '';
    if (/^-[rse]+$/.test(word)) continue;
    if (/^-[dnNptu]$/.test(word)) {
      i += 1;
      continue;
    }
    if (/^[a-z_][a-zA-Z0-9_]*$/.test(word)) continue;
    return unknown(context, `${label} ${excerpt(word)}: not a plain variable name`);
  }
}

function printf(label: string, args: readonly Arg[], context: ClassifyContext): void {
  const first = args[0];
  if (first === undefined) return;
  if (first.kind !== 'literal') return unknown(context, `${label}: the format is only known when it runs`);
  if (first.value === '-v' || (first.value.startsWith('-') && first.value !== '--' && first.value !== '-')) {
    unknown(context, `${label} ${excerpt(first.value)}: assigns to a variable (its name can run code)`);
  }
}

/** exec CMD replaces the shell with CMD; exec with only redirections changes the shell's own files. */
function exec(label: string, args: readonly Arg[], context: ClassifyContext): void {
  if (args.length === 0) return unknown(context, `${label} with only redirections changes the shell's files for every later command`);
  const first = args[0];
  if (first?.kind === 'literal' && first.value.startsWith('-')) return unknown(context, `${label}: option ${excerpt(first.value)} is not understood`);
  classifyArgv(args, context);
}

const WATCH_FLAGS = new Set([
  '-d',
  '--differences',
  '-t',
  '--no-title',
  '-b',
  '--beep',
  '-e',
  '--errexit',
  '-g',
  '--chgexit',
  '-c',
  '--color',
  '-p',
  '--precise',
  '-w',
  '--no-wrap',
  '-C',
  '--no-color',
  '-r',
  '--no-rerun',
]);
const WATCH_VALUED = new Set(['-n', '--interval', '-q', '--equexit', '-s', '--shotsdir']);

/** watch joins its arguments and runs them with sh -c (or, with -x, directly). */
function watch(label: string, args: readonly Arg[], context: ClassifyContext): void {
  let i = 0;
  let direct = false;
  for (; i < args.length; i += 1) {
    const arg = args[i];
    if (arg === undefined) break;
    if (arg.kind !== 'literal') return unknown(context, `${label}: an argument only known when it runs`);
    const value = arg.value;
    if (!value.startsWith('-')) break;
    if (value === '--') {
      i += 1;
      break;
    }
    if (value === '-x' || value === '--exec') {
      direct = true;
      continue;
    }
    if (WATCH_FLAGS.has(value)) continue;
    if (WATCH_VALUED.has(value)) {
      i += 1;
      continue;
    }
    if (/^-n[0-9.]+$/.test(value) || /^--interval=/.test(value)) continue;
    return unknown(context, `${label}: option ${excerpt(value)} is not in the command table`);
  }
  const inner = args.slice(i);
  if (inner.length === 0) return unknown(context, `${label} without a command`);
  if (direct) return classifyArgv(inner, context);
  const words = literals(inner);
  if (words === null) return unknown(context, `${label}: the command is only known when it runs`);
  nested(words.join(' '), context);
}

/** flock [options] FILE CMD... | flock FILE -c TEXT | flock FD. */
function flock(label: string, args: readonly Arg[], context: ClassifyContext): void {
  let i = 0;
  let file: Arg | undefined;
  for (; i < args.length; i += 1) {
    const arg = args[i];
    if (arg === undefined) break;
    if (arg.kind !== 'literal') return unknown(context, `${label}: an argument only known when it runs`);
    const value = arg.value;
    if (value === '-c' || value === '--command') {
      const text = args[i + 1];
      if (text?.kind !== 'literal') return unknown(context, `${label} -c: the command is only known when it runs`);
      return nested(text.value, context);
    }
    if (/^-[sxunoFe]+$/.test(value) || ['--shared', '--exclusive', '--unlock', '--nonblock', '--close', '--no-fork', '--verbose'].includes(value)) continue;
    if (value === '-w' || value === '-E' || value === '--timeout' || value === '--conflict-exit-code') {
      i += 1;
      continue;
    }
    if (value.startsWith('-')) return unknown(context, `${label}: option ${excerpt(value)} is not in the command table`);
    if (file === undefined) {
      file = arg;
      if (!/^[0-9]+$/.test(value)) {
        const found = writeTarget(arg, context.cwdKnown, `${label} creates`);
        if (found !== null) context.verdict.raise(found.class, found.reason);
      }
      continue;
    }
    break;
  }
  const inner = args.slice(i);
  if (inner.length > 0) classifyArgv(inner, context);
}

/** su [-] [-l] [user] [-c TEXT]: privileged; the text is classified too; without -c it runs a shell on its input. */
function su(label: string, args: readonly Arg[], context: ClassifyContext): void {
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i];
    if (arg === undefined) break;
    if (arg.kind !== 'literal') return unknown(context, `${label}: an argument only known when it runs`);
    const value = arg.value;
    if (value === '-c' || value === '--command') {
      const text = args[i + 1];
      if (text?.kind !== 'literal') return unknown(context, `${label} -c: the command is only known when it runs`);
      return nested(text.value, context);
    }
    if (value.startsWith('--command=')) return nested(value.slice('--command='.length), context);
    if (value === '-' || value === '-l' || value === '--login' || value === '-p' || value === '-m' || value === '--preserve-environment') continue;
    if (value.startsWith('-')) return unknown(context, `${label}: option ${excerpt(value)} is not understood`);
  }
  unknown(context, `${label} without -c runs a shell on its input`);
}

/** runuser -u USER [--] CMD... or runuser [-l] USER -c TEXT. */
function runuser(label: string, args: readonly Arg[], context: ClassifyContext): void {
  const first = args[0];
  if (first?.kind === 'literal' && (first.value === '-u' || first.value === '--user')) {
    const rest = args.slice(2);
    const inner = rest[0]?.kind === 'literal' && rest[0].value === '--' ? rest.slice(1) : rest;
    if (inner.length === 0) return unknown(context, `${label} without a command`);
    return classifyArgv(inner, context);
  }
  su(label, args, context);
}

function busybox(label: string, args: readonly Arg[], context: ClassifyContext): void {
  if (args.length === 0) return;
  classifyArgv(args, context);
}

const TAR_UNSAFE = /^--(to-command|use-compress-program|checkpoint-action|info-script|new-volume-script|rsh-command|rmt-command)|^-[^-]*[IF]/;

/** tar: listing (t) is read-only; creating or extracting writes; options that run programs are unknown. */
function tar(label: string, args: readonly Arg[], context: ClassifyContext): void {
  const { verdict } = context;
  const words = literals(args);
  if (words === null) return unknown(context, `${label}: an argument only known when it runs`);
  let mode: string | null = null;
  words.forEach((word, index) => {
    const letters = word.startsWith('--') ? '' : word.startsWith('-') ? word.slice(1) : index === 0 ? word : '';
    if (word === '--list') mode ??= 't';
    if (word === '--create' || word === '--append' || word === '--update') mode ??= 'c';
    if (word === '--extract' || word === '--get') mode ??= 'x';
    for (const letter of letters) if ('tcxruA'.includes(letter)) mode ??= letter;
  });
  const unsafe = words.find((word) => TAR_UNSAFE.test(word));
  if (unsafe !== undefined) return unknown(context, `${label} ${excerpt(unsafe)}: runs another program`);
  if (mode === null) return unknown(context, `${label}: the operation is not understood`);
  if (mode === 't') return;
  if (mode === 'x') {
    const directory = words.findIndex((word) => word === '-C' || word === '--directory' || word.startsWith('--directory='));
    const target: Arg =
      directory === -1
        ? { kind: 'literal', value: '.' }
        : words[directory]?.startsWith('--directory=') === true
          ? { kind: 'literal', value: words[directory]?.slice(12) ?? '' }
          : { kind: 'literal', value: words[directory + 1] ?? '' };
    verdict.raise('mutating', `${label} extracts files`);
    if (words.some((word, index) => word === '--absolute-names' || /^-[^-]*P/.test(word) || (index === 0 && /^[^-]*P/.test(word))))
      verdict.raise('privileged', `${label} -P extracts to absolute paths`);
    if (directory !== -1) {
      const found = writeTarget(target, context.cwdKnown, `${label} extracts into`);
      if (found !== null) verdict.raise(found.class, found.reason);
    } else if (!context.cwdKnown) {
      verdict.raise('privileged', `${label} extracts after changing directory`);
    }
    return;
  }
  verdict.raise('mutating', `${label} writes an archive`);
  const archive = archiveName(words);
  if (archive !== null) {
    const found = writeTarget({ kind: 'literal', value: archive }, context.cwdKnown, `${label} writes`);
    if (found !== null) verdict.raise(found.class, found.reason);
  }
}

function archiveName(words: readonly string[]): string | null {
  for (let i = 0; i < words.length; i += 1) {
    const word = words[i] ?? '';
    if (word.startsWith('--file=')) return word.slice(7);
    if (word === '--file') return words[i + 1] ?? null;
    const letters = word.startsWith('--') ? '' : word.startsWith('-') ? word.slice(1) : i === 0 ? word : '';
    const at = letters.indexOf('f');
    if (at !== -1) return at === letters.length - 1 ? (words[i + 1] ?? null) : letters.slice(at + 1);
  }
  return null;
}

function sysctl(label: string, args: readonly Arg[], context: ClassifyContext): void {
  const words = literals(args);
  if (words === null) return unknown(context, `${label}: an argument only known when it runs`);
  for (const word of words) {
    if (word === '-w' || word === '--write' || word === '-p' || word === '--load' || word === '--system' || word.includes('=')) {
      return context.verdict.raise('privileged', `${label} ${excerpt(word)} changes kernel settings`);
    }
    if (word.startsWith('-') && !/^-[aneNqbArx]+$/.test(word) && !['--all', '--values', '--names', '--binary', '--pattern'].includes(word)) {
      return unknown(context, `${label}: option ${excerpt(word)} is not in the command table`);
    }
  }
}

function date(label: string, args: readonly Arg[], context: ClassifyContext): void {
  const words = literals(args);
  if (words === null) return unknown(context, `${label}: an argument only known when it runs`);
  for (let i = 0; i < words.length; i += 1) {
    const word = words[i] ?? '';
    if (word === '-s' || word.startsWith('--set') || /^-[^-]*s/.test(word)) return context.verdict.raise('privileged', `${label} -s sets the clock`);
    if (word === '-d' || word === '--date' || word === '-r' || word === '--reference' || word === '-f' || word === '--file') {
      i += 1;
      continue;
    }
    if (word.startsWith('-') || word.startsWith('+')) continue;
    return context.verdict.raise('privileged', `${label} ${excerpt(word)} sets the clock`);
  }
}

const SERVICE_READ = new Set(['status']);

/** service NAME ACTION: status is read-only; `service --status-all` too. */
function service(label: string, args: readonly Arg[], context: ClassifyContext): void {
  const words = literals(args);
  if (words === null) return unknown(context, `${label}: an argument only known when it runs`);
  if (words.length === 1 && words[0] === '--status-all') return readOnly(context, `${label} --status-all lists services`);
  if (words.length === 2 && SERVICE_READ.has(words[1] ?? '')) return readOnly(context, `${label} ${excerpt(words[0] ?? '')} status`);
  const rule = { class: 'privileged' as const, why: 'controls a service' };
  applyRule(label, rule, [], context);
}

function readOnly(context: ClassifyContext, reason: string): void {
  context.verdict.raise('read-only', reason);
}
