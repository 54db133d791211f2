/**
 * The audit log: one row per tool call, allowed or denied, in a SQLite-backed Durable Object.
 * A row says who (user, MCP client), where (relay, host), what (tool, command or path), how it
 * ended (outcome, error code, exit code), bytes moved and how long it took. Never file contents,
 * never output, never secrets.
 *
 * A call that reaches a relay is written twice: as `started` before anything is sent, then
 * completed with its outcome. A call whose outcome is never learned (the Worker stopped, the
 * relay vanished) therefore still shows, as started with its outcome unknown. Those rows (and the
 * rows of denied calls) are written first into the TeamDirectory's outbox, in the same call that
 * decides the tool call (worker/team/audit-outbox.ts), and arrive here through `deliver`; readers
 * flush that outbox before they query (readAudit).
 */
import { DurableObject } from 'cloudflare:workers';
import { z } from 'zod';
import { logEvent } from '../log.ts';
import { readSettings } from '../settings.ts';
import { sendAuditBatch } from '../team/audit-batch.ts';
import { teamDirectory } from '../team/team-directory.ts';

/** `started`: sent towards the host, outcome not (yet) known. `checked`: a dry run (ssh_check_command); nothing was sent. */
export const AUDIT_OUTCOMES = ['ok', 'error', 'denied', 'started', 'checked'] as const;

export interface AuditEntry {
  time: string;
  user: string;
  client: string | null;
  relay: string | null;
  host: string | null;
  tool: string;
  /** The command, or the path, the call was about. */
  target: string | null;
  outcome: (typeof AUDIT_OUTCOMES)[number];
  code: string | null;
  exitCode: number | null;
  bytes: number | null;
  durationMs: number;
}

export const auditQuerySchema = z
  .object({
    user: z.string().max(128).optional(),
    host: z.string().max(256).optional(),
    tool: z.string().max(64).optional(),
    outcome: z.enum(AUDIT_OUTCOMES, { error: `outcome must be one of ${AUDIT_OUTCOMES.join(', ')}` }).optional(),
    since: z.iso.datetime({ offset: true, error: 'since must be an ISO 8601 time, e.g. 2026-11-23T00:00:00Z' }).optional(),
    until: z.iso.datetime({ offset: true, error: 'until must be an ISO 8601 time' }).optional(),
    limit: z.coerce.number().int().min(1).max(10_000).default(100),
  })
  .strict();
export type AuditQuery = z.infer<typeof auditQuerySchema>;

/** Commands are stored up to this length; the rest is marked as cut. */
const MAX_TARGET_CHARS = 2000;
/** Old rows are deleted at most this often, on a write. */
const PRUNE_INTERVAL_MS = 60 * 60 * 1000;

/** The columns of one audit row, shared by the log and the TeamDirectory's outbox (worker/team/audit-outbox.ts). */
export const AUDIT_ROW_COLUMNS = `time TEXT NOT NULL,
      user TEXT NOT NULL,
      client TEXT,
      relay TEXT,
      host TEXT,
      tool TEXT NOT NULL,
      target TEXT,
      outcome TEXT NOT NULL,
      code TEXT,
      exit_code INTEGER,
      bytes INTEGER,
      duration_ms INTEGER NOT NULL`;

export class AuditLog extends DurableObject<Env> {
  private lastPruned = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, ${AUDIT_ROW_COLUMNS})`);
    ctx.storage.sql.exec('CREATE INDEX IF NOT EXISTS audit_time ON audit (time)');
    // Rows delivered from the TeamDirectory's outbox carry its id, so a delivery repeated after a
    // failure or by a concurrent flush updates its row instead of adding another.
    const columns = ctx.storage.sql.exec<{ name: string }>("SELECT name FROM pragma_table_info('audit')").toArray();
    if (!columns.some((column) => column.name === 'outbox_id')) ctx.storage.sql.exec('ALTER TABLE audit ADD COLUMN outbox_id TEXT');
    ctx.storage.sql.exec('CREATE UNIQUE INDEX IF NOT EXISTS audit_outbox_id ON audit (outbox_id)');
  }

  /**
   * Test builds' fault hook (workers tests set it through runInDurableObject): this many coming
   * deliveries fail, as when the AuditLog is unreachable.
   */
  failingDeliveries = 0;

  /**
   * Upsert rows from the TeamDirectory's outbox, keyed by their outbox id: a repeated delivery
   * changes nothing, a completion completes its started row, and a `started` that arrives after the
   * completion never overwrites it.
   */
  async deliver(rows: OutboxDelivery[]): Promise<void> {
    if (this.failingDeliveries > 0) {
      this.failingDeliveries -= 1;
      throw new Error('audit log delivery failed (test hook)');
    }
    this.ctx.storage.transactionSync(() => {
      for (const row of rows) {
        this.ctx.storage.sql.exec(
          `INSERT INTO audit (time, user, client, relay, host, tool, target, outcome, code, exit_code, bytes, duration_ms, outbox_id)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (outbox_id) DO UPDATE SET outcome = excluded.outcome, code = excluded.code, exit_code = excluded.exit_code,
             bytes = excluded.bytes, duration_ms = excluded.duration_ms
           WHERE audit.outcome = 'started' AND excluded.outcome <> 'started'`,
          ...this.columns(row),
          row.outboxId,
        );
      }
    });
    this.prune();
  }

  async record(entry: AuditEntry): Promise<void> {
    this.insert(entry);
  }

  /** A row's column values, in the order of the insert statements. */
  private columns(entry: AuditEntry): Array<string | number | null> {
    const target = clipTarget(entry.target);
    return [
      // One format for every row, so the time filters can compare them as text.
      new Date(entry.time).toISOString(),
      entry.user,
      entry.client,
      entry.relay,
      entry.host,
      entry.tool,
      target,
      entry.outcome,
      entry.code,
      entry.exitCode,
      entry.bytes,
      Math.round(entry.durationMs),
    ];
  }

  private insert(entry: AuditEntry): void {
    this.ctx.storage.sql.exec(
      'INSERT INTO audit (time, user, client, relay, host, tool, target, outcome, code, exit_code, bytes, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ...this.columns(entry),
    );
    this.prune();
  }

  /** Delete rows older than AUDIT_RETENTION_DAYS, at most once an hour. */
  private prune(): void {
    const now = Date.now();
    if (now - this.lastPruned < PRUNE_INTERVAL_MS) return;
    this.lastPruned = now;
    const cutoff = new Date(now - readSettings(this.env).auditRetentionDays * 24 * 3600 * 1000).toISOString();
    this.ctx.storage.sql.exec('DELETE FROM audit WHERE time < ?', cutoff);
  }

  /** Newest first (by the call's time: rows from the outbox may arrive after later direct ones). */
  async query(query: AuditQuery): Promise<AuditEntry[]> {
    const conditions: string[] = [];
    const values: (string | number)[] = [];
    const where = (clause: string, value: string | number | undefined): void => {
      if (value === undefined) return;
      conditions.push(clause);
      values.push(value);
    };
    where('user = ?', query.user);
    where('host = ?', query.host);
    where('tool = ?', query.tool);
    where('outcome = ?', query.outcome);
    where('time >= ?', query.since === undefined ? undefined : new Date(query.since).toISOString());
    where('time <= ?', query.until === undefined ? undefined : new Date(query.until).toISOString());
    const sql = `SELECT * FROM audit ${conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : ''} ORDER BY time DESC, seq DESC LIMIT ?`;
    const rows = this.ctx.storage.sql.exec<Record<string, string | number | null>>(sql, ...values, query.limit).toArray();
    return rows.map(auditEntryOf);
  }
}

/** A row of the audit table (or of a TeamDirectory's outbox, which has the same columns) as an entry. */
export function auditEntryOf(row: Record<string, SqlStorageValue>): AuditEntry {
  return {
    time: String(row.time),
    user: String(row.user),
    client: row.client === null ? null : String(row.client),
    relay: row.relay === null ? null : String(row.relay),
    host: row.host === null ? null : String(row.host),
    tool: String(row.tool),
    target: row.target === null ? null : String(row.target),
    outcome: String(row.outcome) as AuditEntry['outcome'],
    code: row.code === null ? null : String(row.code),
    exitCode: row.exit_code === null ? null : Number(row.exit_code),
    bytes: row.bytes === null ? null : Number(row.bytes),
    durationMs: Number(row.duration_ms),
  };
}

/** What is known of a call before it is sent. */
export type StartedEntry = Omit<AuditEntry, 'outcome' | 'code' | 'exitCode' | 'bytes' | 'durationMs'>;
/** A row on its way from the TeamDirectory's outbox, keyed by its outbox id. */
export type OutboxDelivery = AuditEntry & { outboxId: string };
/** How a started call ended. */
export type AuditEnd = Pick<AuditEntry, 'outcome' | 'code' | 'exitCode' | 'bytes' | 'durationMs'> & { outcome: 'ok' | 'error' };

/** A command or path as stored: at most MAX_TARGET_CHARS, the rest marked as cut (the outbox stores it the same way). */
export function clipTarget(target: string | null): string | null {
  return target !== null && target.length > MAX_TARGET_CHARS ? `${target.slice(0, MAX_TARGET_CHARS)}… [cut]` : target;
}

export function auditLog(env: Env): DurableObjectStub<AuditLog> {
  return env.AUDIT_LOG.get(env.AUDIT_LOG.idFromName('audit'));
}

/** Write one row; the call it records already happened, so a failure here is logged loudly, not thrown. */
export async function writeAudit(env: Env, entry: AuditEntry): Promise<void> {
  try {
    await auditLog(env).record(entry);
  } catch (error) {
    logEvent('error', 'could not write the audit log', { tool: entry.tool, user: entry.user, error: String(error) });
  }
}

/**
 * Rows matching `query`, newest first, with read-your-writes: this isolate's batch of audit writes
 * is sent and the TeamDirectory's outbox flushed into the log first (made by readers, never by a tool call). A flush that fails is
 * logged and the rows the log has are returned.
 */
export async function readAudit(env: Env, query: AuditQuery): Promise<AuditEntry[]> {
  // This isolate's writes still waiting for their batch go first: a reader sees its own calls.
  await sendAuditBatch(env);
  const flushed = await teamDirectory(env)
    .flushAudit()
    .catch((error: unknown) => String(error));
  if (flushed !== true) logEvent('error', 'could not flush the audit outbox before a query; recent rows may be missing', { error: String(flushed) });
  return auditLog(env).query(query);
}
