/**
 * The whole local stack for end-to-end tests: a real sshd, the Worker under wrangler dev, the
 * real relay, and an SDK client signed in through OAuth. Tools are called the way an assistant
 * would; helpers read the text and structured results.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { connectMcpClient, type ConnectedClient, type McpEra } from './mcp-client.ts';
import { startRelay, type RelayOptions, type TestRelay } from './relay.ts';
import { startSshd, type SshdOptions, type TestSshd } from './sshd.ts';
import { startWorker, type TestWorker, type WorkerOptions } from './worker.ts';

export interface Stack {
  sshd: TestSshd;
  worker: TestWorker;
  relay: TestRelay;
  mcp: ConnectedClient;
  call(name: string, args: Record<string, unknown>, options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<CallToolResult>;
  /** Replace the relay (after a test stopped or killed it). */
  restartRelay(options?: RelayOptions): Promise<TestRelay>;
  stop(): Promise<void>;
}

export interface StackOptions {
  sshd?: SshdOptions;
  /** Worker vars (wrangler --var), e.g. MAX_FILE_SIZE. */
  workerVars?: Record<string, string>;
  /** Other Worker options (secrets, a port chosen in advance). */
  worker?: Omit<WorkerOptions, 'vars'>;
  relay?: RelayOptions | ((sshd: TestSshd) => RelayOptions);
  /** Which MCP client signs in: '2025-11-25' (SDK v1) or '2026-07-28' (SDK v2); default MCP_CLIENT_ERA, else 2025-11-25. */
  client?: McpEra;
}

export function textOf(result: CallToolResult): string {
  return result.content.map((item) => (item.type === 'text' ? item.text : '')).join('\n');
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const sshd = await startSshd(options.sshd);
  let worker: TestWorker | undefined;
  let relay: TestRelay | undefined;
  try {
    worker = await startWorker({ ...options.worker, ...(options.workerVars ? { vars: options.workerVars } : {}) });
    const relayOptions = typeof options.relay === 'function' ? options.relay(sshd) : options.relay;
    relay = await startRelay(worker, sshd, relayOptions);
    const mcp = await connectMcpClient(
      worker.mcpUrl,
      { username: worker.adminUser, password: worker.adminPassword },
      options.client ? { era: options.client } : {},
    );
    const started: TestWorker = worker;
    const stack: Stack = {
      sshd,
      worker: started,
      relay,
      mcp,
      async call(name, args, callOptions = {}) {
        return mcp.client.callTool({ name, arguments: args }, undefined, {
          ...(callOptions.signal ? { signal: callOptions.signal } : {}),
          timeout: callOptions.timeoutMs ?? 120_000,
        });
      },
      async restartRelay(restartOptions) {
        await stack.relay.stop();
        stack.relay = await startRelay(started, sshd, restartOptions ?? relayOptions);
        return stack.relay;
      },
      async stop() {
        await mcp.close().catch(() => undefined);
        await stack.relay.stop();
        await started.stop();
        await sshd.stop();
      },
    };
    return stack;
  } catch (error) {
    await relay?.stop();
    await worker?.stop();
    await sshd.stop();
    throw error;
  }
}
