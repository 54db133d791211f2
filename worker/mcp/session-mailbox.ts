/**
 * The one piece of a 2025-era MCP session that lives between requests: its mailbox. The Worker
 * serves each request of the session on its own (worker/mcp/legacy-serving.ts), but two kinds of
 * message reach it as separate POSTs that the running call, possibly in another isolate, must see:
 *
 * - the client's answer to a question the call asked on its stream (an elicitation): the call
 *   waits here for it under the question's wire id, which is random and unique to that question;
 * - notifications/cancelled for a call: a call still running after a moment watches here.
 *
 * One object per (user, session nonce), so a user can never reach another user's mailbox. A message
 * nobody waits for yet is kept in the object's storage (it can arrive before its waiter, and the
 * object can restart while a call waits: the call then asks again and finds it). Waiters are calls
 * in progress, held in memory. Everything is bounded in count and age. Nothing on a call's ordinary
 * path comes here: only a call that asks, or that runs long enough to be cancelled by message.
 */
import { DurableObject } from 'cloudflare:workers';
import { countingEnv, countingOn } from '../do-call-count.ts';

/** An answer or cancel nobody has claimed is kept this long (it can arrive before its waiter does). */
export const UNCLAIMED_KEEP_MS = 60_000;
/** At most this many kept messages of each kind, and this many waiters of each kind: the oldest kept go first, a waiter past the bound is turned away. */
export const MAX_ENTRIES = 256;
/** An answer larger than this (as JSON) is not kept: answers to a question here are small forms (and a mailbox holds at most MAX_ENTRIES of them). */
export const MAX_ANSWER_CHARS = 16 * 1024;

/** How a watch for a cancel ends: the call was cancelled, the watch ran out (watch again), or stop watching (the call ended, or the mailbox is full). */
export type CancelWatch = 'cancelled' | 'again' | 'stop';

type Kind = 'answer' | 'cancel';
/** A JSON-RPC id as a storage key: 5 and "5" are different requests. */
type Key = string;

function keyOf(id: string | number): Key {
  return JSON.stringify(id);
}

/** Waiters by key, in memory; several may wait on one key (a client that reuses a request id), and all are woken together. */
class Waiters<T> {
  private readonly waiting = new Map<Key, Array<(value: T) => void>>();
  private count = 0;

  /** Wait for `key` (at most `timeoutMs`, then `timedOut`); `full` at once when MAX_ENTRIES already wait. */
  wait(key: Key, timeoutMs: number, timedOut: T, full: T): Promise<T> {
    if (this.count >= MAX_ENTRIES) return Promise.resolve(full);
    return new Promise<T>((resolve) => {
      const done = (value: T): void => {
        clearTimeout(timer);
        resolve(value);
      };
      const timer = setTimeout(() => this.remove(key, done) && resolve(timedOut), timeoutMs);
      const list = this.waiting.get(key) ?? [];
      list.push(done);
      this.waiting.set(key, list);
      this.count += 1;
    });
  }

  /** Hand `value` to everyone waiting on `key`; false when nobody does. */
  wake(key: Key, value: T): boolean {
    const list = this.waiting.get(key);
    if (!list) return false;
    this.waiting.delete(key);
    this.count -= list.length;
    for (const done of list) done(value);
    return true;
  }

  private remove(key: Key, done: (value: T) => void): boolean {
    const list = this.waiting.get(key);
    const at = list?.indexOf(done) ?? -1;
    if (!list || at < 0) return false;
    list.splice(at, 1);
    if (list.length === 0) this.waiting.delete(key);
    this.count -= 1;
    return true;
  }
}

export class McpSession extends DurableObject<Env> {
  private readonly answerWaiters = new Waiters<unknown>();
  private readonly cancelWaiters = new Waiters<CancelWatch>();

  constructor(ctx: DurableObjectState, env: Env) {
    // Test builds count the Durable Object calls each request makes (worker/do-call-count.ts).
    super(ctx, countingOn(env) ? countingEnv(env) : env);
    ctx.storage.sql.exec(
      'CREATE TABLE IF NOT EXISTS kept (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (kind, key))',
    );
  }

  /** The client's answer to the question with this wire id. */
  async answer(questionId: string, message: unknown): Promise<void> {
    const json = JSON.stringify(message);
    if (json.length > MAX_ANSWER_CHARS) return;
    if (!this.answerWaiters.wake(keyOf(questionId), message)) await this.keep('answer', keyOf(questionId), json);
  }

  /** Wait for the answer to a question (at most `timeoutMs`); null when none came (or too many wait here). */
  async awaitAnswer(questionId: string, timeoutMs: number): Promise<unknown> {
    const kept = this.take('answer', keyOf(questionId), 0);
    if (kept !== undefined) return JSON.parse(kept);
    return this.answerWaiters.wait(keyOf(questionId), timeoutMs, null, null);
  }

  /** The client cancelled its request `requestId`. */
  async cancel(requestId: string | number): Promise<void> {
    if (!this.cancelWaiters.wake(keyOf(requestId), 'cancelled')) await this.keep('cancel', keyOf(requestId), 'true');
  }

  /**
   * Watch for a cancel of request `requestId`: at once when one came since `since` (ms, this
   * object's clock give or take a second), else the first one to come within `timeoutMs`.
   */
  async awaitCancel(requestId: string | number, since: number, timeoutMs: number): Promise<CancelWatch> {
    if (this.take('cancel', keyOf(requestId), since) !== undefined) return 'cancelled';
    return this.cancelWaiters.wait(keyOf(requestId), timeoutMs, 'again', 'stop');
  }

  /** A call ended: whatever it still waits for here is let go of at once. */
  async release(questionIds: string[], requestId: string | number | null): Promise<void> {
    for (const questionId of questionIds) this.answerWaiters.wake(keyOf(questionId), null);
    if (requestId !== null) this.cancelWaiters.wake(keyOf(requestId), 'stop');
  }

  /** Keep a message for its waiter, within the bounds; the alarm clears what nobody claims. */
  private async keep(kind: Kind, key: Key, value: string): Promise<void> {
    const sql = this.ctx.storage.sql;
    this.prune();
    sql.exec('INSERT OR REPLACE INTO kept (kind, key, value, at) VALUES (?, ?, ?, ?)', kind, key, value, Date.now());
    sql.exec('DELETE FROM kept WHERE kind = ? AND key NOT IN (SELECT key FROM kept WHERE kind = ? ORDER BY at DESC LIMIT ?)', kind, kind, MAX_ENTRIES);
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + UNCLAIMED_KEEP_MS);
  }

  /** The message kept under `key` (taken out), if it came no earlier than `since`. */
  private take(kind: Kind, key: Key, since: number): string | undefined {
    this.prune();
    const row = this.ctx.storage.sql.exec<{ value: string; at: number }>('SELECT value, at FROM kept WHERE kind = ? AND key = ?', kind, key).toArray()[0];
    if (!row || row.at < since) return undefined;
    this.ctx.storage.sql.exec('DELETE FROM kept WHERE kind = ? AND key = ?', kind, key);
    return row.value;
  }

  private prune(): void {
    this.ctx.storage.sql.exec('DELETE FROM kept WHERE at < ?', Date.now() - UNCLAIMED_KEEP_MS);
  }

  /**
   * Clears what nobody claimed. Sessions of earlier versions also stored their owner, initialize and
   * last use here, with an idle alarm: those are deleted when it comes.
   */
  override async alarm(): Promise<void> {
    this.prune();
    await this.ctx.storage.delete(['owner', 'initialize', 'lastUsed']);
    const next = this.ctx.storage.sql.exec<{ at: number | null }>('SELECT min(at) AS at FROM kept').toArray()[0]?.at;
    if (typeof next === 'number') await this.ctx.storage.setAlarm(next + UNCLAIMED_KEEP_MS);
  }
}
