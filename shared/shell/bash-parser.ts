/**
 * tree-sitter-bash through web-tree-sitter, from two precompiled WebAssembly modules: the
 * tree-sitter runtime (web-tree-sitter.wasm) and the bash grammar (tree-sitter-bash.wasm).
 * Workers may not compile WebAssembly from bytes at run time, so the caller hands over compiled
 * modules (the Worker imports them as modules, Node compiles the files) and we only instantiate:
 * `instantiateWasm` for the runtime, `Language.loadSync` for the grammar.
 */
import { Language, Parser, type Tree, type TreeCursor } from 'web-tree-sitter';
import type { ParseResult, ParseShell, SyntaxNode } from './syntax-tree.ts';

/** Inputs longer than this are not parsed (the command limit is 10,000 characters; recursion adds little). */
export const MAX_PARSE_CHARS = 20_000;
/** Trees larger than this are not classified: a budget on work, not a grammar fact. */
export const MAX_PARSE_NODES = 20_000;

export interface BashParserModules {
  /** node_modules/web-tree-sitter/web-tree-sitter.wasm, compiled. */
  runtime: WebAssembly.Module;
  /** node_modules/tree-sitter-bash/tree-sitter-bash.wasm, compiled. */
  grammar: WebAssembly.Module;
}

interface MutableNode {
  type: string;
  named: boolean;
  missing: boolean;
  field: string | null;
  text: string;
  children: MutableNode[];
}

/** Loads the parser once; the returned function parses synchronously. */
export async function loadBashParser(modules: BashParserModules): Promise<ParseShell> {
  await Parser.init({
    instantiateWasm(imports: WebAssembly.Imports, done: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void) {
      void WebAssembly.instantiate(modules.runtime, imports).then((instance) => done(instance, modules.runtime));
      return {};
    },
  });
  const parser = new Parser();
  parser.setLanguage(Language.loadSync(modules.grammar));
  return (text: string): ParseResult => {
    if (text.length > MAX_PARSE_CHARS) return { ok: false, reason: `longer than ${MAX_PARSE_CHARS} characters` };
    const tree: Tree | null = parser.parse(text);
    if (tree === null) return { ok: false, reason: 'the parser gave up' };
    try {
      return copyTree(tree.walk(), text);
    } finally {
      tree.delete();
    }
  };
}

/** Copies the tree with one cursor walk (much cheaper than Node objects), bounded by MAX_PARSE_NODES. */
function copyTree(cursor: TreeCursor, text: string): ParseResult {
  try {
    const root = nodeAt(cursor, text, null);
    const stack: MutableNode[] = [root];
    let count = 1;
    // Depth-first: descend, else next sibling, else climb until a sibling exists.
    for (;;) {
      if (cursor.gotoFirstChild()) {
        const parent = stack[stack.length - 1];
        if (parent === undefined) break;
        const node = nodeAt(cursor, text, cursor.currentFieldName);
        parent.children.push(node);
        stack.push(node);
      } else {
        let moved = false;
        while (stack.length > 1) {
          stack.pop();
          if (cursor.gotoNextSibling()) {
            const parent = stack[stack.length - 1];
            if (parent === undefined) break;
            const node = nodeAt(cursor, text, cursor.currentFieldName);
            parent.children.push(node);
            stack.push(node);
            moved = true;
            break;
          }
          cursor.gotoParent();
        }
        if (!moved) break;
      }
      count += 1;
      if (count > MAX_PARSE_NODES) return { ok: false, reason: `more than ${MAX_PARSE_NODES} syntax nodes` };
    }
    const result: SyntaxNode = root;
    return { ok: true, root: result, nodeCount: count };
  } finally {
    cursor.delete();
  }
}

function nodeAt(cursor: TreeCursor, text: string, field: string | null): MutableNode {
  return {
    type: cursor.nodeType,
    named: cursor.nodeIsNamed,
    missing: cursor.nodeIsMissing,
    field,
    text: text.slice(cursor.startIndex, cursor.endIndex),
    children: [],
  };
}
