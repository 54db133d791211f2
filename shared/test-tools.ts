/**
 * Tools that exist only for the test suite (MCP_REMOTE_EXEC_TEST_TOOLS=true, set by the test
 * harness alone): they prove that a tool can ask its caller a question in the middle of a call on
 * both protocol eras, which approvals will rely on. They touch no host.
 *
 * 2025-era session: the question is an elicitation request sent on the call's own stream and the
 * call waits for the answer. 2026-07-28: there is no session to wait on, so the call returns an
 * input_required result; the client asks its user and retries the call with the answer attached.
 */
import {
  acceptedContent,
  inputRequired,
  type CallToolResult,
  type InputRequiredResult,
  type McpServer,
  type ServerContext,
} from '@modelcontextprotocol/server';
import { z } from 'zod';
import type { ProtocolEra } from './mcp-server.ts';
import { registerTool } from './tool-registration.ts';

export const TEST_ASK_TOOL = 'test_ask_name';

const QUESTION = 'What name should the test tool greet?';
const requestedSchema = { type: 'object' as const, properties: { name: { type: 'string' as const, maxLength: 64 } }, required: ['name'] };
const answerSchema = z.object({ name: z.string().min(1).max(64) });

function greeting(name: string, era: ProtocolEra): CallToolResult {
  return { content: [{ type: 'text', text: `hello ${name} (${era})` }], structuredContent: { name, era } };
}

function refused(text: string): CallToolResult {
  return { content: [{ type: 'text', text }], isError: true };
}

async function askOnSession(ctx: ServerContext): Promise<CallToolResult> {
  let answer;
  try {
    // relatedRequestId: the question must travel on this call's own stream; without it the SDK
    // sends it on the session's standalone GET stream, which this server does not offer.
    answer = await ctx.mcpReq.elicitInput({ mode: 'form', message: QUESTION, requestedSchema }, { relatedRequestId: ctx.mcpReq.id, signal: ctx.mcpReq.signal });
  } catch (error) {
    return refused(`The client could not be asked: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (answer.action !== 'accept') return refused(`The client answered ${answer.action}.`);
  const parsed = answerSchema.safeParse(answer.content);
  return parsed.success ? greeting(parsed.data.name, 'legacy') : refused('The answer did not carry a name.');
}

/** An answer the client sent back without accepting (decline, cancel): its action. */
const notAccepted = z.object({ action: z.enum(['decline', 'cancel']) });

function askByResult(ctx: ServerContext): CallToolResult | InputRequiredResult {
  // inputResponses come from the client: read only through schemas.
  const answer = acceptedContent(ctx.mcpReq.inputResponses, 'name', answerSchema);
  if (answer) return greeting(answer.name, 'modern');
  // Asking again after a refusal would loop: the refusal ends the call.
  const refusal = notAccepted.safeParse(ctx.mcpReq.inputResponses?.['name']);
  if (refusal.success) return refused(`The client answered ${refusal.data.action}.`);
  return inputRequired({ inputRequests: { name: inputRequired.elicit({ message: QUESTION, requestedSchema }) } });
}

// Module constants, like every tool's schemas: the Worker builds a server per request, and a schema
// built there again each time (and converted to JSON Schema again) cost test builds, the benchmark's
// among them, about half a millisecond per request.
const askInput = z.object({}).strict();
const askOutput = z.object({ name: z.string(), era: z.enum(['legacy', 'modern']) });

export function registerTestTools(server: McpServer, era: ProtocolEra): void {
  registerTool(
    server,
    TEST_ASK_TOOL,
    {
      title: 'Test: ask the caller a question',
      description: 'Test builds only. Asks the caller for a name mid-call and greets it.',
      inputSchema: askInput,
      outputSchema: askOutput,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (_args, ctx): Promise<CallToolResult | InputRequiredResult> => (era === 'modern' ? askByResult(ctx) : askOnSession(ctx)),
  );
}
