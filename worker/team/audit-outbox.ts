/**
 * The audit outbox: audit rows written in the TeamDirectory's own SQLite storage, in the same call
 * that decides a tool call (so a call costs no separate AuditLog call before it is sent), then
 * delivered to the AuditLog by the TeamDirectory's alarm.
 *
 * A row is `started` (state 1: sent towards the host, outcome not known) or complete (state 2: ok,
 * error or denied); completion happens once and never rewrites a complete row. `sent` is the state
 * the AuditLog has confirmed. A row leaves the outbox once its complete state is confirmed; a
 * started row whose completion never comes (the Worker died) is kept, delivered as started, until
 * the audit retention has passed.
 */
import { AUDIT_ROW_COLUMNS, auditEntryOf, clipTarget, type AuditEnd, type AuditEntry, type OutboxDelivery } from '../audit/audit-log.ts';

const STARTED = 1;
const COMPLETE = 2;
/** Rows per delivery (one AuditLog call), and deliveries per drain: bounded work per alarm. */
export const DRAIN_BATCH = 100;
export const DRAIN_ROUNDS = 20;
/** Completions, and rows, per TeamDirectory call at most (audit-batch.ts batches them). */
export const AUDIT_WRITES_PER_CALL = 100;

type Row = Record<string, SqlStorageValue>;

export function createOutbox(sql: SqlStorage): void {
  sql.exec(`CREATE TABLE IF NOT EXISTS audit_outbox (id TEXT PRIMARY KEY, state INTEGER NOT NULL, sent INTEGER NOT NULL DEFAULT 0, ${AUDIT_ROW_COLUMNS})`);
}

/** Add a row (started, or already complete); its id is what completes it and what the AuditLog keys it by. */
export function addOutboxRow(sql: SqlStorage, entry: AuditEntry): string {
  const id = crypto.randomUUID();
  sql.exec(
    'INSERT INTO audit_outbox (id, state, time, user, client, relay, host, tool, target, outcome, code, exit_code, bytes, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    id,
    entry.outcome === 'started' ? STARTED : COMPLETE,
    new Date(entry.time).toISOString(),
    entry.user,
    entry.client,
    entry.relay,
    entry.host,
    entry.tool,
    clipTarget(entry.target),
    entry.outcome,
    entry.code,
    entry.exitCode,
    entry.bytes,
    Math.round(entry.durationMs),
  );
  return id;
}

/** Complete a started row; a complete (or unknown) row is left as it is. True when it was completed. */
export function completeOutboxRow(sql: SqlStorage, id: string, end: AuditEnd): boolean {
  const updated = sql.exec(
    'UPDATE audit_outbox SET state = ?, outcome = ?, code = ?, exit_code = ?, bytes = ?, duration_ms = ? WHERE id = ? AND state = ?',
    COMPLETE,
    end.outcome,
    end.code,
    end.exitCode,
    end.bytes,
    Math.round(end.durationMs),
    id,
    STARTED,
  );
  return updated.rowsWritten > 0;
}

/** Rows whose current state the AuditLog has not confirmed, oldest first. */
export function undelivered(sql: SqlStorage, limit: number): Array<OutboxDelivery & { state: number }> {
  return sql
    .exec<Row>('SELECT * FROM audit_outbox WHERE sent < state ORDER BY rowid LIMIT ?', limit)
    .toArray()
    .map((row) => ({ outboxId: String(row.id), state: Number(row.state), ...auditEntryOf(row) }));
}

/**
 * The AuditLog confirmed these rows in the state they were read in. A row completed meanwhile keeps
 * `sent` below its state and goes again; a confirmed complete row leaves the outbox.
 */
export function confirmDelivered(sql: SqlStorage, rows: ReadonlyArray<{ outboxId: string; state: number }>): void {
  for (const row of rows) sql.exec('UPDATE audit_outbox SET sent = MAX(sent, ?) WHERE id = ?', row.state, row.outboxId);
  sql.exec('DELETE FROM audit_outbox WHERE sent = ?', COMPLETE);
}

/** Started rows already delivered whose completion never came, older than `cutoff` (ISO time): dropped. */
export function dropStale(sql: SqlStorage, cutoff: string): void {
  sql.exec('DELETE FROM audit_outbox WHERE state = ? AND sent = ? AND time < ?', STARTED, STARTED, cutoff);
}

export function pendingCount(sql: SqlStorage): number {
  return Number(sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM audit_outbox WHERE sent < state').one().n);
}
