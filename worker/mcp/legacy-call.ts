/**
 * A 2025-era request that can run long (a tool call, a task's result), while it runs
 * (worker/mcp/legacy-serving.ts serves the request): the questions it asks its client travel under
 * wire ids its session's mailbox (session-mailbox.ts) knows, where the client's answer, which comes
 * as a POST of its own, is waited for; a cancel that comes by message reaches it through the
 * mailbox; and a client that drops the response stream cancels it.
 */
import { isJSONRPCNotification, isJSONRPCRequest, isJSONRPCResponse, type WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/server';
import type { JSONRPCMessage } from '@modelcontextprotocol/server';
import { besideCriticalPath } from '../do-call-count.ts';
import { logEvent } from '../log.ts';
import { MAX_ANSWER_CHARS } from './session-mailbox.ts';
import type { Session } from './session-id.ts';

/** A question's wire id: this prefix and a random UUID; an answer under any other id is no answer to us. */
const QUESTION_PREFIX = 'q-';
export const QUESTION_ID = /^q-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** A call still running this long after it started begins to watch its session's mailbox for a cancel. */
export const CANCEL_WATCH_AFTER_MS = 1000;
/** One watch (or wait for an answer) lasts at most this long; the call then watches again while it runs. */
const MAILBOX_POLL_MS = 30_000;
/** A mailbox wait that fails (the mailbox restarted) is asked again this many times in all, this long apart. */
const MAILBOX_ATTEMPTS = 3;
const MAILBOX_RETRY_MS = 250;
/** A question's answer is waited for at most this long (the asking tool gives up sooner, with its own timeout). */
const ANSWER_WAIT_MS = 15 * 60_000;
/**
 * A cancel counts for a call when it reached the mailbox at most this long before the call began:
 * it may overtake its own request on the way (another connection), and the clocks of this isolate
 * and the mailbox differ slightly. Kept short so that a cancel of an earlier request with the same
 * JSON-RPC id (a client that started counting again) does not stop a new one.
 */
const CLOCK_SLACK_MS = 1000;

type MailboxStub = DurableObjectStub<import('./session-mailbox.ts').McpSession>;

/** Named by user and nonce: a user who names someone else's nonce reaches a mailbox of their own. */
export function mailboxOf(env: Env, session: Session): MailboxStub {
  return env.MCP_SESSION.get(env.MCP_SESSION.idFromName(`${session.userId}\n${session.nonce}`));
}

/**
 * A request of a session while it runs: its questions to the client travel under wire ids the
 * mailbox knows, a cancel that comes by message reaches it, and a dropped stream cancels it.
 */
export class RunningCall {
  private readonly started = Date.now();
  /** Wire id → the id the server gave the question. */
  private readonly questions = new Map<string, string | number>();
  private ended = false;
  /** Whether the call has begun watching the mailbox for a cancel (it then has a wait there to release). */
  private watching = false;
  private watchTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly env: Env;
  private readonly ctx: ExecutionContext;
  private readonly session: Session;
  private readonly transport: WebStandardStreamableHTTPServerTransport;
  private readonly requestId: string | number;

  constructor(env: Env, ctx: ExecutionContext, session: Session, transport: WebStandardStreamableHTTPServerTransport, requestId: string | number) {
    this.env = env;
    this.ctx = ctx;
    this.session = session;
    this.transport = transport;
    this.requestId = requestId;
    const send = transport.send.bind(transport);
    transport.send = async (message, options): Promise<void> => send(this.outgoing(message), options);
  }

  /** Questions go out under a fresh random id; a cancel of one names it by that id too. */
  private outgoing(message: JSONRPCMessage): JSONRPCMessage {
    // Most messages are the call's progress and its answer: only a request or a cancel is rewritten.
    // (A schema check that fails builds an error report, so the method is looked at first.)
    const method = 'method' in message ? message.method : undefined;
    if (method === undefined || (method !== 'notifications/cancelled' && !('id' in message))) return message;
    if (isJSONRPCRequest(message)) {
      const wireId = `${QUESTION_PREFIX}${crypto.randomUUID()}`;
      this.questions.set(wireId, message.id);
      void this.awaitAnswer(wireId, message.id);
      return { ...message, id: wireId };
    }
    if (isJSONRPCNotification(message) && message.method === 'notifications/cancelled') {
      const asked = [...this.questions].find(([, id]) => id === message.params?.requestId);
      if (asked) return { ...message, params: { ...message.params, requestId: asked[0] } };
    }
    return message;
  }

  private async awaitAnswer(wireId: string, serverId: string | number): Promise<void> {
    const answer = await this.fromMailbox("a client's answer", (mailbox) => mailbox.awaitAnswer(wireId, ANSWER_WAIT_MS));
    this.questions.delete(wireId);
    if (this.ended) return;
    if (isJSONRPCResponse(answer) && JSON.stringify(answer).length <= MAX_ANSWER_CHARS) {
      this.transport.onmessage?.({ ...answer, id: serverId });
      return;
    }
    // No answer will come this way (the wait ran out, was turned away, or kept failing): the asking
    // tool learns so now, rather than at its own timeout.
    this.transport.onmessage?.({ jsonrpc: '2.0', id: serverId, error: { code: -32603, message: "The client's answer could not be received." } });
  }

  /**
   * A wait on the mailbox, asked again (on a fresh stub) when it fails: the mailbox restarting drops
   * the waits in progress, while what it keeps survives. Null when it keeps failing or the call ended.
   */
  private async fromMailbox<T>(what: string, wait: (mailbox: MailboxStub) => Promise<T>): Promise<T | null> {
    for (let attempt = 1; attempt <= MAILBOX_ATTEMPTS && !this.ended; attempt += 1) {
      try {
        return await wait(mailboxOf(this.env, this.session));
      } catch (error) {
        logEvent('warn', `could not wait for ${what}`, { attempt, error: String(error) });
        if (attempt < MAILBOX_ATTEMPTS) await new Promise((resolve) => setTimeout(resolve, MAILBOX_RETRY_MS));
      }
    }
    return null;
  }

  /** The response, watched: its end releases what the call waits for, its drop cancels the call. */
  follow(response: Response): Response {
    if (!response.body) {
      this.end();
      return response;
    }
    // Beside the call, never holding up its answer: not on the critical path (test builds count that).
    this.watchTimer = setTimeout(() => void besideCriticalPath(() => this.watchForCancel()), CANCEL_WATCH_AFTER_MS);
    const reader = response.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller): Promise<void> => {
        const { done, value } = await reader.read();
        if (done) {
          this.end();
          controller.close();
        } else controller.enqueue(value);
      },
      cancel: async (reason): Promise<void> => {
        // The transport forgets a request whose stream the client dropped, but the tool keeps
        // running: a dropped stream is a cancel, so the tool's signal aborts (the relay stops the remote process).
        this.cancelCall('client disconnected');
        this.end();
        await reader.cancel(reason).catch(() => undefined);
      },
    });
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  }

  private cancelCall(reason: string): void {
    this.transport.onmessage?.({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: this.requestId, reason } });
  }

  private async watchForCancel(): Promise<void> {
    if (this.ended) return;
    this.watching = true;
    // Bounded by the call's life (it ends when its stream does), each watch by MAILBOX_POLL_MS, and
    // a mailbox that turns the watch away (too many wait there) or keeps failing ends the watching:
    // a dropped request still cancels.
    while (!this.ended) {
      const watch = await this.fromMailbox('a cancel', (mailbox) => mailbox.awaitCancel(this.requestId, this.started - CLOCK_SLACK_MS, MAILBOX_POLL_MS));
      if (watch === 'cancelled' && !this.ended) this.cancelCall('cancelled by the client');
      if (watch !== 'again') return;
    }
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.watchTimer !== null) clearTimeout(this.watchTimer);
    const watching = this.watching;
    if (this.questions.size === 0 && !watching) return;
    // Let go of the mailbox waits now rather than at their timeouts; after the answer, not before it.
    this.ctx.waitUntil(
      mailboxOf(this.env, this.session)
        .release([...this.questions.keys()], watching ? this.requestId : null)
        .catch(() => undefined),
    );
  }
}
