/**
 * The one way a tool is registered. Every tool result passes through here on its way to the
 * client, so what makes remote data safe to show (shared/visible-text.ts) cannot be forgotten by
 * a new tool: the tool modules call registerTool(server, …), never server.registerTool.
 */
import {
  isInputRequiredResult,
  type CallToolResult,
  type InputRequiredResult,
  type McpServer,
  type RegisteredTool,
  type StandardSchemaWithJSON,
  type ToolAnnotations,
  type ToolCallback,
} from '@modelcontextprotocol/server';
import { jsonSchemaOnce } from './schema-once.ts';
import { safeResultText } from './visible-text.ts';

export interface ToolConfig<InputArgs extends StandardSchemaWithJSON, OutputArgs extends StandardSchemaWithJSON> {
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

/**
 * What leaves a tool: a CallToolResult made safe; an InputRequiredResult (a question for the
 * caller on a 2026-07-28 request) untouched: it carries no content, only the question the server
 * itself wrote, and the SDK must see it exactly as built.
 */
export function safeOutcome(result: CallToolResult | InputRequiredResult, json: boolean): CallToolResult | InputRequiredResult {
  return isInputRequiredResult(result) ? result : safeResult(result, json);
}

/** Each server's tools as registered here, so a later layer (shared/task-calls.ts) can find a tool's schema. */
const registered = new WeakMap<McpServer, Map<string, RegisteredTool>>();

/** A tool registered on this server through registerTool, by name. */
export function registeredTool(server: McpServer, name: string): RegisteredTool | undefined {
  return registered.get(server)?.get(name);
}

/**
 * Servers that answer one tools/call and nothing else (the Worker builds one per 2026-07-28
 * request): only the tool named here is registered on them, since registering the rest is most of
 * the cost of building a server and none of them can be reached by that request. `found` says
 * whether that tool exists.
 */
const singleTool = new WeakMap<McpServer, { name: string; found: boolean }>();

/** Register only `name` on `server` from now on. */
export function registerOnly(server: McpServer, name: string): void {
  singleTool.set(server, { name, found: false });
}

/** Whether the one tool asked of registerOnly was registered (false: there is no such tool here). */
export function foundOnly(server: McpServer): boolean {
  return singleTool.get(server)?.found ?? false;
}

/** Registers the tool (undefined when `server` takes only another one: registerOnly). */
export function registerTool<InputArgs extends StandardSchemaWithJSON, OutputArgs extends StandardSchemaWithJSON>(
  server: McpServer,
  name: string,
  config: ToolConfig<InputArgs, OutputArgs>,
  handler: ToolCallback<InputArgs>,
): RegisteredTool | undefined {
  const single = singleTool.get(server);
  if (single !== undefined) {
    if (single.name !== name) return undefined;
    single.found = true;
  }
  // Every tool here takes arguments, so the handler is (args, ctx); the SDK's conditional
  // callback type cannot be narrowed generically, hence the one cast.
  type Run = (args: unknown, ctx: unknown) => CallToolResult | InputRequiredResult | Promise<CallToolResult | InputRequiredResult>;
  const run = handler as Run;
  const safe: Run = async (args, ctx) => safeOutcome(await run(args, ctx), jsonRequested(args));
  const schemas = { inputSchema: jsonSchemaOnce(config.inputSchema), outputSchema: config.outputSchema && jsonSchemaOnce(config.outputSchema) };
  const tool = server.registerTool(name, { ...config, ...schemas }, safe as ToolCallback<InputArgs>);
  const tools = registered.get(server) ?? new Map<string, RegisteredTool>();
  tools.set(name, tool);
  registered.set(server, tools);
  return tool;
}
