/**
 * The bash parser in the Worker. Workers refuse to compile WebAssembly from bytes at run time, so
 * both files are imported as modules (wrangler's default rule makes `*.wasm` a compiled
 * WebAssembly.Module) and only instantiated (shared/shell/bash-parser.ts).
 */
import runtime from 'web-tree-sitter/web-tree-sitter.wasm';
import grammar from 'tree-sitter-bash/tree-sitter-bash.wasm';
import { loadBashParser } from '../../shared/shell/bash-parser.ts';
import type { ParseShell } from '../../shared/shell/syntax-tree.ts';

let loading: Promise<ParseShell> | null = null;

/** The parser, loaded on first use in this isolate and shared afterwards. */
export function bashParser(): Promise<ParseShell> {
  loading ??= loadBashParser({ runtime, grammar });
  return loading;
}
