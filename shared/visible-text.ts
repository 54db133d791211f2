/**
 * Remote output is data, and must look like data. A terminal control sequence in command output, a
 * file name or an error message could recolour, hide or rewrite what a person reviewing the
 * conversation sees, and bidirectional overrides can make text read differently from what it is.
 * `text` results therefore show every such character as a visible escape (ESC as `\x1b`); `json`
 * results keep the exact text, with the characters JSON leaves raw written as `\u` escapes, so the
 * parsed value is unchanged.
 */

/**
 * C0 controls except tab and newline, DEL, C1 controls, and the Unicode bidirectional embedding,
 * override and isolate controls (the "Trojan Source" characters).
 */
const INVISIBLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** What JSON.stringify leaves raw but a terminal or a reader would still act on. */
const RAW_IN_JSON = /[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Readonly<Record<string, string>> = { '\r': '\\r', '\u001b': '\\x1b' };

function visibleEscape(char: string): string {
  const named = NAMED[char];
  if (named !== undefined) return named;
  const code = char.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
}

/** `text` as a person should see it: newlines and tabs kept, every other control character shown as an escape. */
export function visibleText(text: string): string {
  return text.replace(INVISIBLE, visibleEscape);
}

/** JSON text with the characters JSON.stringify leaves raw written as `\u` escapes; it parses to the same value. */
export function jsonSafeText(json: string): string {
  return json.replace(RAW_IN_JSON, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Whether `text` is a complete JSON document (what a `json` result's text is). */
function isJsonDocument(text: string): boolean {
  const first = text.trimStart()[0];
  if (first !== '{' && first !== '[') return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * The text of one tool result item: a JSON document (a `json` result) is kept exact and made
 * JSON-safe; anything else is made visible.
 */
export function safeResultText(text: string, jsonRequested: boolean): string {
  return jsonRequested && isJsonDocument(text) ? jsonSafeText(text) : visibleText(text);
}
