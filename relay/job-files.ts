/**
 * The stdio mode's job records: one JSON file per job in `<state dir>/jobs/<jobId>.json` (dir
 * 0700, files 0600). Several stdio servers may share the state directory (one per desktop
 * session), so the files are the only truth: nothing is cached between calls, every write goes
 * to a temporary file of its own and is renamed into place (a reader sees the old record or the
 * new one, never half of one), and who records a job's end is decided by creating
 * `<jobId>.ended` exclusively. A file that does not parse is skipped with a log line.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { JobRecord, JobStore } from '../shared/job-ledger.ts';
import { JOB_ID_PATTERN, JOB_STATES } from '../shared/jobs.ts';
import { GUEST_KINDS, guestIdWire } from '../shared/proxmox.ts';
import { jobReport } from '../shared/protocol.ts';
import { log } from './log.ts';

/** Records read by one list(): the newest (by change time), so running jobs are never the ones left out. */
export const DEFAULT_MAX_JOB_RECORDS = 5_000;
/** A record is a few KiB (the report's tails are at most 16 KiB each): anything far larger is not one. */
const MAX_RECORD_BYTES = 256 * 1024;
/** A temporary file this old belongs to a writer that died before its rename. */
const STALE_TEMP_MS = 10 * 60_000;

const RECORD_FILE = /^([0-9a-f]{32})\.json$/;
const ENDED_FILE = /^([0-9a-f]{32})\.ended$/;
const TEMP_FILE = /^\.[0-9a-f]{32}\.json\.\d+\.[0-9a-f]+\.tmp$/;

const epochMs = z.number().int().min(0);

const jobRecord = z
  .object({
    jobId: z.string().regex(JOB_ID_PATTERN),
    owner: z.string().min(1).max(256),
    ownerName: z.string().max(256),
    name: z.string().max(256).nullable(),
    hostLabel: z.string().min(1).max(256),
    route: z.object({ relay: z.string().max(256).nullable(), host: z.string().min(1).max(256) }).strict(),
    guest: z
      .object({ kind: z.enum(GUEST_KINDS), id: guestIdWire })
      .strict()
      .nullable(),
    command: z.string().max(100_000),
    createdAt: epochMs,
    timeoutMs: z.number().int().positive(),
    keepBytes: z.number().int().positive(),
    state: z.enum(JOB_STATES),
    report: jobReport.nullable(),
    checkedAt: epochMs.nullable(),
    cleanupAt: epochMs.nullable(),
    cleanedAt: epochMs.nullable(),
    endRecorded: z.boolean(),
    note: z.string().max(4096).nullable(),
  })
  .strict() satisfies z.ZodType<JobRecord>;

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

let tempCounter = 0;

export class FileJobStore implements JobStore {
  readonly dir: string;
  private readonly maxRecords: number;
  /** Files already reported as unreadable (name and change time), so a check every few seconds does not repeat it. */
  private readonly reported = new Set<string>();

  constructor(stateDir: string, options: { maxRecords?: number } = {}) {
    this.dir = join(stateDir, 'jobs');
    this.maxRecords = options.maxRecords ?? DEFAULT_MAX_JOB_RECORDS;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const stat = lstatSync(this.dir);
    if (!stat.isDirectory()) throw new Error(`${this.dir} must be a directory (it holds the background job records), not a link or a file.`);
    if (process.getuid && stat.uid !== process.getuid())
      throw new Error(`${this.dir} belongs to another user (uid ${stat.uid}); the job records must be this user's own.`);
    // Made by an older version or by hand with a wider mode: the records name commands and hosts.
    if ((stat.mode & 0o077) !== 0) chmodSync(this.dir, 0o700);
  }

  private file(jobId: string, suffix: '.json' | '.ended'): string {
    // Ids come from the ledger, but a path is built from them: nothing else may become one.
    if (!JOB_ID_PATTERN.test(jobId)) throw new Error('not a job id');
    return join(this.dir, `${jobId}${suffix}`);
  }

  async get(jobId: string): Promise<JobRecord | undefined> {
    if (!JOB_ID_PATTERN.test(jobId)) return undefined;
    return this.read(`${jobId}.json`);
  }

  async put(record: JobRecord): Promise<void> {
    const target = this.file(record.jobId, '.json');
    // A name of its own per write: two processes writing one record must not share a temporary file.
    const temp = join(this.dir, `.${record.jobId}.json.${process.pid}.${(tempCounter++).toString(16)}${randomBytes(4).toString('hex')}.tmp`);
    try {
      writeFileSync(temp, JSON.stringify(record), { mode: 0o600, flag: 'wx' });
      renameSync(temp, target);
    } catch (error) {
      rmSync(temp, { force: true });
      throw error;
    }
  }

  async delete(jobId: string): Promise<void> {
    // The end marker first: a record without one can at worst be recorded as ended again, never the reverse.
    rmSync(this.file(jobId, '.ended'), { force: true });
    rmSync(this.file(jobId, '.json'), { force: true });
  }

  async claimEnd(jobId: string): Promise<boolean> {
    try {
      closeSync(openSync(this.file(jobId, '.ended'), 'wx', 0o600));
      return true;
    } catch (error) {
      if (errorCode(error) === 'EEXIST') return false;
      throw error;
    }
  }

  async list(): Promise<JobRecord[]> {
    const names = readdirSync(this.dir);
    const present = new Set<string>();
    let records: Array<{ name: string; changed: number }> = [];
    for (const name of names) {
      const id = RECORD_FILE.exec(name)?.[1];
      if (id !== undefined) {
        present.add(id);
        records.push({ name, changed: 0 });
      }
    }
    for (const name of names) this.tidy(name, present);
    if (records.length > this.maxRecords) {
      records = records.map((entry) => ({ ...entry, changed: this.stat(entry.name)?.mtimeMs ?? 0 })).sort((a, b) => b.changed - a.changed);
      log('warn', 'more job records than are read at once; the oldest are left out until some are cleaned up', {
        dir: this.dir,
        records: records.length,
        read: this.maxRecords,
      });
      records = records.slice(0, this.maxRecords);
    }
    const out: JobRecord[] = [];
    for (const entry of records) {
      const record = this.read(entry.name);
      if (record) out.push(record);
    }
    return out;
  }

  /** Leftovers of writers that died: temporary files, and end markers whose record is gone. */
  private tidy(name: string, present: Set<string>): void {
    const ended = ENDED_FILE.exec(name)?.[1];
    const stale = ended !== undefined ? !present.has(ended) : TEMP_FILE.test(name);
    if (!stale) return;
    const stat = this.stat(name);
    // Young ones may belong to a write or a delete in progress in another process.
    if (stat && Date.now() - stat.mtimeMs > STALE_TEMP_MS) rmSync(join(this.dir, name), { force: true });
  }

  private stat(name: string): Stats | undefined {
    try {
      return lstatSync(join(this.dir, name));
    } catch {
      return undefined;
    }
  }

  private read(name: string): JobRecord | undefined {
    const path = join(this.dir, name);
    const stat = this.stat(name);
    if (stat === undefined) return undefined;
    const skip = (reason: string): undefined => {
      const key = `${name}@${stat.mtimeMs}`;
      if (!this.reported.has(key)) {
        if (this.reported.size >= 1_000) this.reported.clear();
        this.reported.add(key);
        log('warn', 'skipped an unreadable job record', { file: path, reason });
      }
      return undefined;
    };
    if (!stat.isFile()) return skip('not a regular file');
    if (stat.size > MAX_RECORD_BYTES) return skip(`larger than ${MAX_RECORD_BYTES} bytes`);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      // Gone between the listing and the read (deleted by another process): not a fault.
      if (errorCode(error) === 'ENOENT') return undefined;
      return skip(error instanceof SyntaxError ? 'not JSON' : (errorCode(error) ?? 'unreadable'));
    }
    const parsed = jobRecord.safeParse(raw);
    if (!parsed.success) return skip(`not a job record (${parsed.error.issues[0]?.path.join('.') ?? ''}: ${parsed.error.issues[0]?.message ?? ''})`);
    if (`${parsed.data.jobId}.json` !== name) return skip('its job id does not match its file name');
    return parsed.data;
  }
}
