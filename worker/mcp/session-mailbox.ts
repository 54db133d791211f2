/**
 * The one piece of a 2025-era MCP session that lives between requests: its mailbox. The Worker
 * serves each request of the session on its own (worker/mcp/legacy-serving.ts), but two kinds of
 * message reach it as separate POSTs that the running call, possibly in another isolate, must see:
 *
 * - the client's answer to a question the call asked on its stream (an elicitation): the call
 *   waits here for it under the question's wire id, which is random and unique to that question;
 * - notifications/cancelled for a call: a call still running after a moment watches here.
 *
 * One object per (user, session nonce), so a user can never reach another user's mailbox. Held in
 * memory only: a question's answer or a cancel matters for seconds to minutes, while someone is
 * waiting, and the waiting call keeps the object alive. Everything is bounded in count and age.
 * Nothing on a call's ordinary path comes here: only a call that asks, or that runs long enough to
 * be cancelled by message.
 */
import { DurableObject } from 'cloudflare:workers';
import { countingEnv, countingOn } from '../do-call-count.ts';

/** An answer or cancel nobody has claimed is kept this long (it can arrive before its waiter does). */
export const UNCLAIMED_KEEP_MS = 60_000;
/** At most this many unclaimed answers, cancels and waiters each: the oldest goes first. */
const MAX_ENTRIES = 256;
/** An answer larger than this (as JSON) is not kept: answers to a question here are small forms. */
export const MAX_ANSWER_CHARS = 64 * 1024;

type Key = string | number;

interface Waiter<T> {
  key: Key;
  resolve: (value: T) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** Bounded map from key to a value with the time it came. */
class Kept<T> {
  private readonly entries = new Map<Key, { value: T; at: number }>();

  put(key: Key, value: T): void {
    this.prune();
    this.entries.delete(key);
    this.entries.set(key, { value, at: Date.now() });
    while (this.entries.size > MAX_ENTRIES) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }

  /** The value kept under `key` (taken out), if it came no earlier than `since`. */
  take(key: Key, since = 0): T | undefined {
    this.prune();
    const entry = this.entries.get(key);
    if (!entry || entry.at < since) return undefined;
    this.entries.delete(key);
    return entry.value;
  }

  private prune(): void {
    const cutoff = Date.now() - UNCLAIMED_KEEP_MS;
    for (const [key, entry] of this.entries) {
      if (entry.at >= cutoff) break;
      this.entries.delete(key);
    }
  }
}

/** Waiters by key, bounded: one more than MAX_ENTRIES wakes the oldest with `empty`. */
class Waiters<T> {
  private readonly waiting = new Map<Key, Waiter<T>>();
  private readonly empty: T;

  constructor(empty: T) {
    this.empty = empty;
  }

  wait(key: Key, timeoutMs: number): Promise<T> {
    this.wake(key, this.empty);
    return new Promise<T>((resolve) => {
      const timer = setTimeout(() => this.wake(key, this.empty), timeoutMs);
      this.waiting.set(key, { key, resolve, timer });
      while (this.waiting.size > MAX_ENTRIES) {
        const oldest = this.waiting.keys().next();
        if (oldest.done) break;
        this.wake(oldest.value, this.empty);
      }
    });
  }

  /** Hand `value` to whoever waits on `key`; false when nobody does. */
  wake(key: Key, value: T): boolean {
    const waiter = this.waiting.get(key);
    if (!waiter) return false;
    this.waiting.delete(key);
    clearTimeout(waiter.timer);
    waiter.resolve(value);
    return true;
  }
}

export class McpSession extends DurableObject<Env> {
  private readonly answers = new Kept<unknown>();
  private readonly answerWaiters = new Waiters<unknown>(null);
  private readonly cancels = new Kept<true>();
  private readonly cancelWaiters = new Waiters<boolean>(false);

  constructor(ctx: DurableObjectState, env: Env) {
    // Test builds count the Durable Object calls each request makes (worker/do-call-count.ts).
    super(ctx, countingOn(env) ? countingEnv(env) : env);
    // Sessions of earlier versions stored their owner and initialize here, with an idle alarm; the
    // alarm (below) still comes for those and clears them. Nothing is stored any more.
  }

  /** The client's answer to the question with this wire id. */
  async answer(questionId: string, message: unknown): Promise<void> {
    if (JSON.stringify(message).length > MAX_ANSWER_CHARS) return;
    if (!this.answerWaiters.wake(questionId, message)) this.answers.put(questionId, message);
  }

  /** Wait for the answer to a question (at most `timeoutMs`); null when none came. */
  async awaitAnswer(questionId: string, timeoutMs: number): Promise<unknown> {
    const kept = this.answers.take(questionId);
    if (kept !== undefined) return kept;
    return this.answerWaiters.wait(questionId, timeoutMs);
  }

  /** The client cancelled its request `requestId`. */
  async cancel(requestId: Key): Promise<void> {
    if (!this.cancelWaiters.wake(requestId, true)) this.cancels.put(requestId, true);
  }

  /**
   * Whether request `requestId` is cancelled: at once when a cancel came since `since` (ms, this
   * object's clock give or take a few seconds), else the first one to come within `timeoutMs`.
   */
  async awaitCancel(requestId: Key, since: number, timeoutMs: number): Promise<boolean> {
    if (this.cancels.take(requestId, since) !== undefined) return true;
    return this.cancelWaiters.wait(requestId, timeoutMs);
  }

  /** A call ended: whatever it still waits for here is let go of at once. */
  async release(questionIds: string[], requestId: Key | null): Promise<void> {
    for (const questionId of questionIds) this.answerWaiters.wake(questionId, null);
    if (requestId !== null) this.cancelWaiters.wake(requestId, false);
  }

  /** Only sessions of earlier versions have an alarm: their stored owner and initialize are deleted. */
  override async alarm(): Promise<void> {
    await this.ctx.storage.deleteAll();
  }
}
