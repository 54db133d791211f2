/**
 * Temporary files of writes that have not finished, recorded on the relay's disk before each is
 * created. A write removes its entry once the file is renamed into place or deleted. An entry
 * whose write gave up without deleting it (the SSH connection died), or that a killed process
 * left behind, is a leftover: the relay deletes that file over SFTP when it can reach the host.
 *
 * Several processes may share the state directory (a relay, one stdio server per desktop
 * session), so each keeps its own file, named by its PID, and adopts only the files of
 * processes that are no longer running. Entries of writes still in progress are never swept.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { log } from './log.ts';

const entries = z.array(z.object({ host: z.string(), path: z.string(), since: z.string() }));
export type UnfinishedWrite = z.infer<typeof entries>[number];

const FILE_PATTERN = /^unfinished-writes-(\d+)\.json$/;

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return !(typeof error === 'object' && error !== null && 'code' in error && error.code === 'ESRCH');
  }
}

function readEntries(file: string): UnfinishedWrite[] {
  try {
    const parsed = entries.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    if (parsed.success) return parsed.data;
  } catch {
    // Unreadable or half-written: treated as empty, and said so below.
  }
  log('warn', 'ignored an unreadable list of unfinished writes', { file });
  return [];
}

export class UnfinishedWrites {
  private readonly dir: string;
  private readonly file: string;
  private list: UnfinishedWrite[] = [];
  /** Writes in progress in this process: never swept. */
  private readonly active = new Set<string>();

  constructor(dir: string) {
    this.dir = dir;
    this.file = join(dir, `unfinished-writes-${process.pid}.json`);
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      const pid = Number(FILE_PATTERN.exec(name)?.[1]);
      if (!pid || pid === process.pid || running(pid)) continue;
      const orphaned = join(dir, name);
      this.list.push(...readEntries(orphaned));
      unlinkSync(orphaned);
    }
    if (this.list.length > 0) this.save();
  }

  /** Entries no write in this process is working on. */
  leftovers(): UnfinishedWrite[] {
    return this.list.filter((entry) => !this.active.has(key(entry.host, entry.path)));
  }

  add(host: string, path: string): void {
    this.list.push({ host, path, since: new Date().toISOString() });
    this.active.add(key(host, path));
    this.save();
  }

  remove(host: string, path: string): void {
    this.active.delete(key(host, path));
    const before = this.list.length;
    this.list = this.list.filter((entry) => entry.host !== host || entry.path !== path);
    if (this.list.length !== before) this.save();
  }

  /** The write gave up without deleting its file: it is now a leftover for the sweep. */
  abandon(host: string, path: string): void {
    this.active.delete(key(host, path));
  }

  private save(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    if (this.list.length === 0) {
      if (existsSync(this.file)) unlinkSync(this.file);
      return;
    }
    const temp = `${this.file}.tmp`;
    writeFileSync(temp, JSON.stringify(this.list), { mode: 0o600 });
    renameSync(temp, this.file);
  }
}

function key(host: string, path: string): string {
  return `${host}\0${path}`;
}
