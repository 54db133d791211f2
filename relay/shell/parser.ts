/**
 * The bash parser in Node: the two WebAssembly files are read from node_modules and compiled here
 * (Node may compile at run time; the Worker may not, see worker/shell/parser.ts).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { loadBashParser } from '../../shared/shell/bash-parser.ts';
import type { ParseShell } from '../../shared/shell/syntax-tree.ts';

const require = createRequire(import.meta.url);

let loading: Promise<ParseShell> | null = null;

/** The parser, loaded on first use and shared afterwards. */
export function bashParser(): Promise<ParseShell> {
  loading ??= load();
  return loading;
}

async function load(): Promise<ParseShell> {
  const [runtime, grammar] = await Promise.all([
    compileFile(require.resolve('web-tree-sitter/web-tree-sitter.wasm')),
    compileFile(require.resolve('tree-sitter-bash/tree-sitter-bash.wasm')),
  ]);
  return loadBashParser({ runtime, grammar });
}

async function compileFile(path: string): Promise<WebAssembly.Module> {
  return WebAssembly.compile(await readFile(path));
}
