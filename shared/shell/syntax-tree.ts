/**
 * The minimal syntax tree the classifier reads (shared/shell/classify.ts). A parser adapter
 * (shared/shell/bash-parser.ts over tree-sitter-bash) copies its tree into these plain objects
 * and frees the WebAssembly tree at once, so nothing the classifier holds points into WASM memory
 * and the classifier can be tested without a parser.
 */
export interface SyntaxNode {
  /** The grammar's node type (`command`, `word`, `ERROR`, ...); anonymous tokens carry their text (`;`, `>`, `$(`). */
  readonly type: string;
  /** Named nodes are grammar rules; anonymous ones are punctuation and keywords. */
  readonly named: boolean;
  /** The parser inserted this node to recover from an error (tree-sitter MISSING). */
  readonly missing: boolean;
  /** The field this node fills in its parent (`name`, `argument`, `redirect`, `destination`...), if any. */
  readonly field: string | null;
  /** The source text the node covers. */
  readonly text: string;
  readonly children: readonly SyntaxNode[];
}

/** A parse of one command: the root, or why there is none (input too large, parser gave up). */
export type ParseResult = { ok: true; root: SyntaxNode; nodeCount: number } | { ok: false; reason: string };

/** Parses shell text (bash grammar); each runtime loads the parser its own way. */
export type ParseShell = (text: string) => ParseResult;
