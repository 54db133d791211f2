/**
 * The one place that reaches past the SDK's public surface, for MCP tasks (shared/task-calls.ts).
 *
 * A task answer (`{task}` on 2025-11-25, `resultType: "task"` on 2026-07-28) cannot come out of a
 * tool callback: McpServer's tools/call handler validates a callback's result against the tool's
 * outputSchema and wants structuredContent. So task-calls installs its own tools/call handler in
 * front of McpServer's and hands every call it does not take over to McpServer's own handler,
 * unchanged. SDK 2.4.0 has no getter for that handler: McpServer installs it with
 * `server.server.setRequestHandler('tools/call', fn)` (two arguments) the first time a tool is
 * registered (McpServer.setToolRequestHandlers). This watches that call while the tools are
 * registered and keeps `fn`. The SDK is pinned (package.json); test/unit/shared/task-calls.test.ts
 * fails if nothing is captured, and then no server declares task support.
 */
import type { CallToolRequest, CallToolResult, InputRequiredResult, McpServer, ServerContext } from '@modelcontextprotocol/server';

/** McpServer's own tools/call handler: validates the arguments, runs the tool, validates its output. */
export type ToolCallHandler = (request: CallToolRequest, ctx: ServerContext) => Promise<CallToolResult | InputRequiredResult>;

type SetRequestHandler = (method: string, ...rest: unknown[]) => void;

function isHandler(value: unknown): value is ToolCallHandler {
  return typeof value === 'function';
}

/**
 * Runs `register` (which registers the server's tools) and returns the tools/call handler
 * McpServer installed meanwhile, or null when it installed none this way (no tool registered, or
 * an SDK that works differently).
 */
export function captureToolCallHandler(server: McpServer, register: () => void): ToolCallHandler | null {
  const low = server.server as unknown as { setRequestHandler: SetRequestHandler };
  const hadOwn = Object.hasOwn(low, 'setRequestHandler');
  const original = low.setRequestHandler;
  let captured: ToolCallHandler | null = null;
  low.setRequestHandler = (method: string, ...rest: unknown[]): void => {
    const [handler] = rest;
    if (method === 'tools/call' && rest.length === 1 && captured === null && isHandler(handler)) captured = handler;
    original.call(low, method, ...rest);
  };
  try {
    register();
  } finally {
    if (hadOwn) low.setRequestHandler = original;
    else delete (low as { setRequestHandler?: SetRequestHandler }).setRequestHandler;
  }
  return captured;
}
