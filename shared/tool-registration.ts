/**
 * The one way a tool is registered. Every tool result passes through here on its way to the
 * client, so what makes remote data safe to show (shared/visible-text.ts) cannot be forgotten by
 * a new tool: the tool modules call registerTool(server, …), never server.registerTool.
 */
import type { McpServer, RegisteredTool, ToolCallback } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { AnySchema, ZodRawShapeCompat } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import type { CallToolResult, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { safeResultText } from './visible-text.ts';

export interface ToolConfig<InputArgs extends ZodRawShapeCompat | AnySchema, OutputArgs extends ZodRawShapeCompat | AnySchema> {
  title?: string;
  description?: string;
  inputSchema: InputArgs;
  outputSchema?: OutputArgs;
  annotations?: ToolAnnotations;
}

/** Whether the caller asked for the json format (its result text is then a JSON document). */
function jsonRequested(args: unknown): boolean {
  return typeof args === 'object' && args !== null && 'response_format' in args && args.response_format === 'json';
}

/** The result with every text item made safe to show; structuredContent keeps the exact values. */
export function safeResult(result: CallToolResult, json: boolean): CallToolResult {
  return { ...result, content: result.content.map((item) => (item.type === 'text' ? { ...item, text: safeResultText(item.text, json) } : item)) };
}

export function registerTool<InputArgs extends ZodRawShapeCompat | AnySchema, OutputArgs extends ZodRawShapeCompat | AnySchema>(
  server: McpServer,
  name: string,
  config: ToolConfig<InputArgs, OutputArgs>,
  handler: ToolCallback<InputArgs>,
): RegisteredTool {
  // Every tool here takes arguments, so the handler is (args, extra); the SDK's conditional
  // callback type cannot be narrowed generically, hence the one cast.
  const run = handler as (args: unknown, extra: unknown) => CallToolResult | Promise<CallToolResult>;
  const safe = async (args: unknown, extra: unknown): Promise<CallToolResult> => safeResult(await run(args, extra), jsonRequested(args));
  return server.registerTool(name, config, safe as ToolCallback<InputArgs>);
}
