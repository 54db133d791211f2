import type { CallToolResult } from '@modelcontextprotocol/server';
import { describeError, type ToolError } from './errors.ts';

/** The one way a failure becomes a tool result: isError, with code, what happened and what to do. */
export function errorResult(error: ToolError): CallToolResult {
  return { content: [{ type: 'text', text: describeError(error) }], isError: true };
}
