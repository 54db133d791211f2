/**
 * Classifies shell text by walking the parser's tree (shared/shell/syntax-tree.ts): every simple
 * command anywhere in it (lists, pipelines, subshells, `$(...)`, backticks, `<(...)`, here-docs,
 * arithmetic, `sh -c` text, `eval`, wrapped commands) is looked up in the command table
 * (shared/shell/command-table.ts), and every redirection that writes is checked. The class is the
 * most risky of all of them. Whatever is not understood with certainty is `unknown`:
 * a parse error, a node type not reviewed below, a command name that is not literal, a program not
 * in the table, shell state that changes later commands, control characters.
 */
import type { CommandClass, CommandClassification } from './command-class.ts';
import { HARMLESS_ENV, PROGRAM_PREFIXES, PROGRAMS, type ProgramRule, SYSTEM_PROGRAM_DIRS } from './command-table.ts';
import { applySpecial } from './program-rules.ts';
import { type Arg, argOf, EXPANDING, literalValue } from './shell-words.ts';
import type { ParseShell, SyntaxNode } from './syntax-tree.ts';
import { Verdict } from './verdict.ts';
import { writeTarget } from './write-targets.ts';

/** The longest command classified (the exec tools accept 10,000 characters). */
export const MAX_COMMAND_CHARS = 10_000;
/** Shell text inside shell text (`sh -c`, `eval`, `watch`, `su -c`) is parsed this deep at most. */
export const MAX_NESTING = 3;
/** All nested texts of one command together. */
const MAX_NESTED_CHARS = 10_000;
const MAX_NESTED_NODES = 2_000;

/** C0 controls but tab and newline, DEL, C1 and bidi controls (as shared/visible-text.ts). */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

/** Node types reviewed for this classifier; any other named node makes the command unknown. */
const CONTAINERS = new Set([
  'program',
  'list',
  'pipeline',
  'subshell',
  'compound_statement',
  'do_group',
  'if_statement',
  'elif_clause',
  'else_clause',
  'while_statement',
  'for_statement',
  'case_statement',
  'case_item',
  'negated_command',
  'redirected_statement',
  'variable_assignments',
  'command_substitution',
  'process_substitution',
  'concatenation',
  'string',
  'array',
  'test_command',
  'parenthesized_expression',
  'command_name',
  'herestring_redirect',
  'simple_expansion',
]);

/** Leaves that carry no command. */
const LEAVES = new Set([
  'word',
  'number',
  'raw_string',
  'ansi_c_string',
  'string_content',
  'heredoc_content',
  'heredoc_start',
  'heredoc_end',
  'comment',
  'variable_name',
  'special_variable_name',
  'test_operator',
  'regex',
  'extglob_pattern',
  'file_descriptor',
]);

/** Brace expansion (`{a,b}`, `{1..3}`): tree-sitter does not mark it, so it is found in the text. */
const BRACES = /\{[^}\s]*(,|\.\.)[^}\s]*\}/;

/** Arithmetic comparisons inside `[[ ]]`: bash evaluates variable operands as code (`a[$(...)]`). */
const ARITHMETIC_TESTS = new Set(['-eq', '-ne', '-lt', '-le', '-gt', '-ge']);

export interface ClassifyContext {
  readonly verdict: Verdict;
  /** Inside [[ ]] / [ ], where only -eq and friends evaluate arithmetic. */
  inTest?: boolean;
  readonly parse: ParseShell;
  /** Nesting depth of shell text inside shell text. */
  readonly depth: number;
  /** Shared by every nested text of one command. */
  readonly budget: { chars: number; nodes: number };
  /** False once any part of the command changes directory. */
  cwdKnown: boolean;
}

/** Classifies one command with the given parser. */
export function classifyWith(parse: ParseShell, command: string): CommandClassification {
  const verdict = new Verdict();
  const context: ClassifyContext = { verdict, parse, depth: 0, budget: { chars: 0, nodes: 0 }, cwdKnown: true };
  if (command.length > MAX_COMMAND_CHARS) {
    verdict.raise('unknown', `longer than ${MAX_COMMAND_CHARS} characters`);
  } else if (command.trim() === '') {
    verdict.raise('read-only', 'runs nothing');
  } else {
    classifyText(command, context);
  }
  return verdict.result();
}

/** Parses and classifies shell text (the whole command, or text given to `sh -c`, `eval`, ...). */
export function classifyText(text: string, context: ClassifyContext): void {
  const { verdict } = context;
  if (CONTROL.test(text)) return verdict.raise('unknown', 'contains control characters');
  if (!text.isWellFormed()) return verdict.raise('unknown', 'contains invalid Unicode');
  if (context.depth > 0) {
    context.budget.chars += text.length;
    if (context.depth > MAX_NESTING) return verdict.raise('unknown', `shell text nested more than ${MAX_NESTING} deep`);
    if (context.budget.chars > MAX_NESTED_CHARS) return verdict.raise('unknown', 'too much nested shell text');
  }
  const parsed = context.parse(text);
  if (!parsed.ok) return verdict.raise('unknown', `not parsed: ${parsed.reason}`);
  if (context.depth > 0) {
    context.budget.nodes += parsed.nodeCount;
    if (context.budget.nodes > MAX_NESTED_NODES) return verdict.raise('unknown', 'too much nested shell text');
  }
  if (changesDirectory(parsed.root)) context.cwdKnown = false;
  visit(parsed.root, context, false);
}

/** Whether any command in the text is cd/pushd/popd: relative writes anywhere (loops run again) lose their base. */
function changesDirectory(node: SyntaxNode): boolean {
  if (node.type === 'command_name') {
    const name = node.children.length === 1 && node.children[0] !== undefined ? literalValue(node.children[0]) : null;
    return name !== null && /^(cd|pushd|popd)$/.test(name.slice(name.lastIndexOf('/') + 1));
  }
  return node.children.some(changesDirectory);
}

function visit(node: SyntaxNode, context: ClassifyContext, quotedHeredoc: boolean): void {
  const { verdict } = context;
  if (node.type === 'ERROR') return verdict.raise('unknown', `does not parse near "${excerpt(node.text)}"`);
  if (node.missing) return verdict.raise('unknown', `incomplete: "${node.type}" missing`);
  if (!node.named) return;
  if (LEAVES.has(node.type)) return crossCheck(node, context);
  if (node.type === 'concatenation' && node.children.some((child) => child.type === 'word' && /[{}]/.test(child.text)) && BRACES.test(node.text)) {
    verdict.raise('unknown', `uses brace expansion ("${excerpt(node.text)}")`);
  }
  if (node.type === 'test_command') return visitAll(node.children, { ...context, inTest: true }, quotedHeredoc);
  if (CONTAINERS.has(node.type)) return visitAll(node.children, context, quotedHeredoc);
  switch (node.type) {
    case 'command':
      return command(node, context);
    case 'file_redirect':
      return redirect(node, context);
    case 'heredoc_redirect':
      return heredoc(node, context);
    case 'heredoc_body':
      if (quotedHeredoc) return;
      if (node.children.length === 0) return crossCheck(node, context);
      return visitAll(node.children, context, false);
    case 'variable_assignment':
      return assignment(node, context, 'sets');
    case 'expansion':
      return expansion(node, context);
    case 'subscript':
      if (node.children.some((child) => child.field === 'index' && !/^[0-9@*]+$/.test(child.text))) {
        verdict.raise('unknown', 'an array subscript is evaluated as code');
      }
      return visitAll(node.children, context, false);
    case 'unary_expression':
      if (node.children.some((child) => child.type === 'test_operator' && child.text === '-v')) {
        verdict.raise('unknown', '-v evaluates an array subscript');
      }
      return visitAll(node.children, context, false);
    case 'arithmetic_expansion':
    case 'c_style_for_statement':
      return arithmetic(node, { ...context, inTest: false });
    case 'binary_expression':
    case 'ternary_expression':
    case 'postfix_expression':
      return arithmetic(node, context);
    case 'brace_expression':
      return verdict.raise('unknown', `uses brace expansion ("${excerpt(node.text)}")`);
    case 'declaration_command':
    case 'unset_command':
      verdict.raise('unknown', `${firstWord(node)} changes variables for later commands`);
      return visitAll(node.children, context, false);
    case 'function_definition':
      verdict.raise('unknown', 'defines a shell function (it can shadow any program)');
      return visitAll(node.children, context, false);
    default:
      return verdict.raise('unknown', `uses shell syntax the classifier does not know (${node.type})`);
  }
}

function visitAll(nodes: readonly SyntaxNode[], context: ClassifyContext, quotedHeredoc: boolean): void {
  for (const child of nodes) visit(child, context, quotedHeredoc);
}

/**
 * A leaf that still holds `$(`, a backtick or `<(` is text the parser did not split out (tree-sitter
 * leaves backticks inside here-documents unparsed): the shell would run it, so it is unknown.
 */
function crossCheck(node: SyntaxNode, context: ClassifyContext): void {
  if (node.type === 'raw_string' || node.type === 'comment' || node.type === 'ansi_c_string') return;
  const text = node.text;
  // An escaped \$( or \` is text; a leaf never starts inside an escape.
  const suspicious = node.type === 'word' ? /(^|[^\\])(`|\$\(|[<>]\()/ : /(^|[^\\])(`|\$\()/;
  if (node.type === 'word' && BRACES.test(text)) context.verdict.raise('unknown', `uses brace expansion ("${excerpt(text)}")`);
  if (suspicious.test(text)) context.verdict.raise('unknown', `contains a substitution the parser did not split out ("${excerpt(text)}")`);
}

function heredoc(node: SyntaxNode, context: ClassifyContext): void {
  const start = node.children.find((child) => child.type === 'heredoc_start');
  // A quoted delimiter (<<'EOF', <<"EOF", <<\EOF) makes the body literal text.
  const quoted = start !== undefined && /['"\\]/.test(start.text);
  visitAll(node.children, context, quoted);
}

function expansion(node: SyntaxNode, context: ClassifyContext): void {
  const operators = node.children.filter((child) => child.field === 'operator').map((child) => child.text);
  // ${!x} expands a name chosen at run time; ${x@P} runs prompt expansion (including $(...)) on the value.
  if (operators.includes('!') || operators.includes('@')) {
    context.verdict.raise('unknown', `"${excerpt(node.text)}" can run code held in a variable`);
  }
  visitAll(node.children, context, false);
}

/** Arithmetic over a variable evaluates the variable's value as an expression, array subscripts and all. */
function arithmetic(node: SyntaxNode, context: ClassifyContext): void {
  if (node.type === 'binary_expression' && context.inTest === true) {
    const operator = node.children.find((child) => child.field === 'operator')?.text ?? '';
    const operands = node.children.filter((child) => child.field === 'left' || child.field === 'right');
    if (ARITHMETIC_TESTS.has(operator) && operands.some((child) => !/^-?[0-9]+$/.test(literalValue(child) ?? ''))) {
      context.verdict.raise('unknown', `"${excerpt(node.text)}" evaluates a variable as arithmetic`);
    }
    if (operator === '-v') context.verdict.raise('unknown', '-v evaluates an array subscript');
    return visitAll(node.children, context, false);
  }
  if (hasVariable(node)) context.verdict.raise('unknown', `"${excerpt(node.text)}" evaluates a variable as arithmetic`);
  visitAll(node.children, context, false);
}

function hasVariable(node: SyntaxNode): boolean {
  if (node.type === 'variable_name' || node.type === 'simple_expansion' || node.type === 'expansion') return true;
  if (node.type === 'word' && /[A-Za-z_]/.test(node.text)) return true;
  if (node.type === 'command_substitution') return false;
  return node.children.some(hasVariable);
}

/** `name=value` alone or before a command. */
function assignment(node: SyntaxNode, context: ClassifyContext, verb: 'sets' | 'gives the command'): void {
  const name = node.children.find((child) => child.field === 'name');
  const text = name?.text ?? '';
  const harmless = name?.type === 'variable_name' && (HARMLESS_ENV.test(text) || (verb === 'sets' && /[a-z]/.test(text)));
  if (!harmless) context.verdict.raise('unknown', `${verb} ${excerpt(text)}, which can change what runs`);
  visitAll(node.children, context, false);
}

function redirect(node: SyntaxNode, context: ClassifyContext): void {
  const operator = node.children.find((child) => !child.named)?.text ?? '';
  const destination = node.children.find((child) => child.field === 'destination');
  visitAll(node.children, context, false);
  if (destination === undefined) return context.verdict.raise('unknown', `redirection ${excerpt(node.text)} without a target`);
  if (operator === '<' || operator === '<&' || operator === '<&-' || operator === '>&-') return;
  const target = argOf(destination);
  // >&2, 2>&1, >&-: duplicating or closing descriptors writes nothing new.
  if ((operator === '>&' || operator === '<&') && target.kind === 'literal' && /^([0-9]+-?|-)$/.test(target.value)) return;
  if (!['>', '>>', '>|', '&>', '&>>', '>&', '<>'].includes(operator)) {
    return context.verdict.raise('unknown', `redirection ${excerpt(node.text)} is not understood`);
  }
  const verdict = writeTarget(target, context.cwdKnown, `writes with ${operator} to`);
  if (verdict !== null) context.verdict.raise(verdict.class, verdict.reason);
}

function command(node: SyntaxNode, context: ClassifyContext): void {
  const argv: Arg[] = [];
  for (const child of node.children) {
    if (child.type === 'variable_assignment') {
      assignment(child, context, 'gives the command');
    } else if (child.field === 'name') {
      visit(child, context, false);
      const word = child.children[0];
      argv.unshift(word === undefined || child.children.length !== 1 ? EXPANDING : argOf(word));
    } else if (child.field === 'argument') {
      visit(child, context, false);
      argv.push(argOf(child));
    } else {
      visit(child, context, false);
    }
  }
  if (argv.length > 0) classifyArgv(argv, context);
}

/** Classifies one program call given as words (from the tree, or built by a wrapper such as sudo or xargs). */
export function classifyArgv(argv: readonly Arg[], context: ClassifyContext): void {
  const { verdict } = context;
  const first = argv[0];
  if (first === undefined) return;
  if (first.kind !== 'literal') return verdict.raise('unknown', 'the program name is only known when it runs');
  let name = first.value;
  if (name === '') return verdict.raise('unknown', 'an empty program name');
  if (name.includes('/')) {
    const slash = name.lastIndexOf('/');
    if (!SYSTEM_PROGRAM_DIRS.includes(name.slice(0, slash))) {
      return verdict.raise('unknown', `runs ${excerpt(name)}, a program outside the system directories`);
    }
    name = name.slice(slash + 1);
  }
  verdict.program(name);
  const rule = lookup(name);
  if (rule === undefined) return verdict.raise('unknown', `runs ${excerpt(name)}, which is not in the command table`);
  applyRule(name, rule, argv.slice(1), context);
}

function lookup(name: string): ProgramRule | undefined {
  if (Object.hasOwn(PROGRAMS, name)) return PROGRAMS[name];
  return PROGRAM_PREFIXES.find((entry) => name.startsWith(entry.prefix))?.rule;
}

/** Applies a table entry to the arguments after the program (or subcommand) name. */
export function applyRule(label: string, rule: ProgramRule, args: readonly Arg[], context: ClassifyContext): void {
  const { verdict } = context;
  if (rule.special !== undefined) {
    verdict.raise(rule.class, `${label}: ${rule.why}`);
    return applySpecial(rule.special, label, args, context);
  }
  if (rule.wrapper !== undefined) return wrapper(label, rule, args, context);
  const operands: Arg[] = [];
  let endOfOptions = false;
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i];
    if (arg === undefined) break;
    if (arg.kind !== 'literal') {
      if (arg.kind === 'expanding' && rule.globSafe !== true) {
        verdict.raise('unknown', `${label}: an argument only known when it runs could be an option`);
      }
      if (rule.subcommands !== undefined && operands.length === 0) {
        return verdict.raise('unknown', `${label}: the subcommand is only known when it runs`);
      }
      operands.push(arg);
      continue;
    }
    const value = arg.value;
    if (rule.plusCommands === true && value.startsWith('+')) verdict.raise('unknown', `${label} ${excerpt(value)}: runs a viewer command`);
    if (endOfOptions || value === '-' || !value.startsWith('-')) {
      if (rule.subcommands !== undefined && operands.length === 0) {
        const next = Object.hasOwn(rule.subcommands, value) ? rule.subcommands[value] : undefined;
        if (next === undefined) {
          verdict.raise(rule.otherSubcommands ?? 'unknown', `${label} ${excerpt(value)}: ${rule.why}`);
          return;
        }
        return applyRule(`${label} ${value}`, next, args.slice(i + 1), context);
      }
      operands.push(arg);
      continue;
    }
    if (value === '--') {
      endOfOptions = true;
      continue;
    }
    const taken = option(label, rule, value, args[i + 1], context);
    if (taken) i += 1;
  }
  if (args.length === 0 && rule.bare !== undefined) return verdict.raise(rule.bare, `${label}: ${rule.why}`);
  verdict.raise(rule.class, `${label}: ${rule.why}`);
  if (rule.subcommands !== undefined && operands.length === 0) return;
  if (rule.operands !== undefined && operands.length > rule.operands.max) {
    verdict.raise(rule.operands.beyond, `${label} with ${operands.length} operands: ${rule.why}`);
  }
  if (rule.writes !== undefined) {
    // chmod --reference=F FILE... has no mode operand.
    const noMode = args.some((arg) => arg.kind === 'literal' && arg.value.startsWith('--reference'));
    const targets = rule.writes === 'operands' || noMode ? operands : rule.writes === 'last-operand' ? operands.slice(-1) : operands.slice(1);
    // uniq IN OUT, xxd IN OUT: only an operand beyond the read ones is written.
    if (rule.operands !== undefined && operands.length <= rule.operands.max) targets.length = 0;
    for (const target of targets) {
      const found = writeTarget(target, context.cwdKnown, `${label} changes`);
      if (found !== null) verdict.raise(found.class, found.reason);
    }
  }
}

/** Checks one option word; returns true when it took the next word as its value. */
function option(label: string, rule: ProgramRule, word: string, next: Arg | undefined, context: ClassifyContext): boolean {
  const { verdict } = context;
  const names: { name: string; attached: string | null }[] = [];
  if (word.startsWith('--')) {
    const equals = word.indexOf('=');
    names.push(equals === -1 ? { name: word, attached: null } : { name: word.slice(0, equals), attached: word.slice(equals + 1) });
  } else {
    // A whole single-dash word first (`-name`, `-Qi`), then its letters as combined flags.
    const whole = word;
    if (rule.options?.[whole] !== undefined || rule.knownOptions?.includes(whole) === true || rule.valued?.includes(whole) === true) {
      names.push({ name: whole, attached: null });
    } else {
      for (let i = 1; i < word.length; i += 1) {
        const name = `-${word[i] ?? ''}`;
        const rest = word.slice(i + 1);
        if (rule.valued?.includes(name) === true) {
          names.push({ name, attached: rest === '' ? null : rest });
          break;
        }
        names.push({ name, attached: null });
      }
    }
  }
  let took = false;
  for (const { name, attached } of names) {
    const raised = optionClass(rule, name);
    if (raised !== undefined)
      verdict.raise(raised, `${label} ${name}: ${raised === 'unknown' ? 'an option that can run or write anything' : 'an option that changes things'}`);
    const known = rule.knownOptions === undefined || rule.knownOptions.includes(name) || raised !== undefined;
    if (!known) {
      const cls = rule.unlistedOptions ?? 'unknown';
      verdict.raise(cls, cls === 'unknown' ? `${label}: option ${excerpt(name)} is not in the command table` : `${label} ${excerpt(name)}: ${rule.why}`);
    }
    const valued = rule.valued?.includes(name) === true;
    if (valued && attached === null) took = true;
    if (rule.writeOptions?.includes(name) === true) {
      const target: Arg | undefined = attached !== null ? { kind: 'literal', value: attached } : next;
      const found = writeTarget(target ?? EXPANDING, context.cwdKnown, `${label} ${name} writes`);
      if (found !== null) verdict.raise(found.class, found.reason);
    }
  }
  return took;
}

function optionClass(rule: ProgramRule, name: string): CommandClass | undefined {
  const options = rule.options;
  if (options === undefined) return undefined;
  if (Object.hasOwn(options, name)) return options[name];
  for (const [pattern, cls] of Object.entries(options)) {
    if (pattern.endsWith('*') && name.startsWith(pattern.slice(0, -1))) return cls;
  }
  return undefined;
}

/** `sudo -u x cmd`, `nice -n 5 cmd`, `timeout 10 cmd`: the wrapper's own options, then the command. */
function wrapper(label: string, rule: ProgramRule, args: readonly Arg[], context: ClassifyContext): void {
  const { verdict } = context;
  const spec = rule.wrapper;
  if (spec === undefined) return;
  verdict.raise(rule.class, `${label}: ${rule.why}`);
  let i = 0;
  let leading = spec.leading ?? 0;
  for (; i < args.length; i += 1) {
    const arg = args[i];
    if (arg === undefined) break;
    if (arg.kind !== 'literal') return verdict.raise('unknown', `${label}: an argument only known when it runs`);
    const value = arg.value;
    if (value === '--') {
      i += 1;
      break;
    }
    if (!value.startsWith('-') || value === '-') {
      if (leading === 0) break;
      leading -= 1;
      continue;
    }
    // nice -5 cmd: an old form of -n 5.
    if (label === 'nice' && /^-[0-9]+$/.test(value)) continue;
    const long = value.startsWith('--');
    const equals = value.indexOf('=');
    const name = long ? (equals === -1 ? value : value.slice(0, equals)) : value.slice(0, 2);
    const raised = optionClass(rule, name);
    if (raised !== undefined) verdict.raise(raised, `${label} ${name}: an option that changes things`);
    if (rule.writeOptions?.includes(name) === true) {
      const attached = long ? (equals === -1 ? null : value.slice(equals + 1)) : value.length > 2 ? value.slice(2) : null;
      const target = attached !== null ? ({ kind: 'literal', value: attached } as const) : (args[i + 1] ?? EXPANDING);
      const found = writeTarget(target, context.cwdKnown, `${label} ${name} writes`);
      if (found !== null) verdict.raise(found.class, found.reason);
    }
    if (spec.valued.includes(name)) {
      if (long ? equals === -1 : value.length === 2) i += 1;
      continue;
    }
    if (spec.flags.includes(name)) {
      if (!long && value.length > 2) {
        // Combined flags (-nE): every letter must be a flag.
        for (const letter of value.slice(1)) {
          if (!spec.flags.includes(`-${letter}`)) return verdict.raise('unknown', `${label}: option ${excerpt(value)} is not in the command table`);
        }
      }
      continue;
    }
    if (raised !== undefined) continue;
    return verdict.raise('unknown', `${label}: option ${excerpt(value)} is not in the command table`);
  }
  const inner = args.slice(i);
  if (inner.length === 0) {
    if (rule.class === 'privileged') verdict.raise('unknown', `${label} without a command runs a shell on its input`);
    return;
  }
  classifyArgv(inner, context);
}

export function excerpt(text: string): string {
  const line = text.replace(/\s+/g, ' ');
  return line.length > 40 ? `${line.slice(0, 37)}...` : line;
}

function firstWord(node: SyntaxNode): string {
  return excerpt(node.text.split(/\s/, 1)[0] ?? '');
}
