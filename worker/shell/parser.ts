/**
 * The bash parser in the Worker. Workers refuse to compile WebAssembly from bytes at run time, so
 * both files are imported as modules (wrangler's default rule makes `*.wasm` a compiled
 * WebAssembly.Module) and only instantiated (shared/shell/bash-parser.ts).
 */
/// <reference path="./wasm-modules.d.ts" />
import runtime from 'web-tree-sitter/web-tree-sitter.wasm';
import grammar from 'tree-sitter-bash/tree-sitter-bash.wasm';
import { loadBashParser } from '../../shared/shell/bash-parser.ts';
import type { ParseShell } from '../../shared/shell/syntax-tree.ts';

let loading: Promise<ParseShell> | null = null;

/** The parser, loaded on first use in this isolate and shared afterwards. */
export function bashParser(): Promise<ParseShell> {
  loading ??= withoutNodeBranch(() => loadBashParser({ runtime, grammar }));
  return loading;
}

/**
 * web-tree-sitter's Emscripten glue takes its Node branch when `process.versions.node` is set, as
 * nodejs_compat sets it, and that branch calls `createRequire(import.meta.url)`: in wrangler's
 * bundle `import.meta.url` is undefined, so it throws (the Workers test pool does not bundle and
 * never sees this; bench/classify.ts and test/e2e/classifier-bundle.test.ts run the bundle). The
 * glue reads the environment synchronously when `Parser.init` is called, and the documented
 * Electron-renderer test (`process.type == "renderer"`) turns the Node branch off; it is set for
 * that synchronous moment only and restored before anything else can run.
 */
function withoutNodeBranch<T>(start: () => Promise<T>): Promise<T> {
  const target = (globalThis as { process?: { type?: unknown } }).process;
  if (target === undefined) return start();
  const had = Object.hasOwn(target, 'type');
  const previous = target.type;
  target.type = 'renderer';
  try {
    return start();
  } finally {
    if (had) target.type = previous;
    else delete target.type;
  }
}
