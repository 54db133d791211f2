/**
 * Temporary files of writes that have not finished, recorded on the relay's disk before each is
 * created. A write removes its entry once the file is renamed into place or deleted. If the relay
 * is killed, or the SSH connection drops before the temporary file can be deleted, the entry
 * stays, and the relay deletes that file over SFTP when it can: at its next start, or shortly
 * after the failure. So an aborted transfer leaves nothing behind on the host.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { log } from './log.ts';

const entries = z.array(z.object({ host: z.string(), path: z.string(), since: z.string() }));
export type UnfinishedWrite = z.infer<typeof entries>[number];

export class UnfinishedWrites {
  private readonly file: string;
  private list: UnfinishedWrite[];

  constructor(file: string) {
    this.file = file;
    this.list = [];
    if (existsSync(file)) {
      const parsed = entries.safeParse(JSON.parse(readFileSync(file, 'utf8')));
      if (parsed.success) this.list = parsed.data;
      else log('warn', 'ignored an unreadable list of unfinished writes', { file });
    }
  }

  all(): UnfinishedWrite[] {
    return [...this.list];
  }

  add(host: string, path: string): void {
    this.list.push({ host, path, since: new Date().toISOString() });
    this.save();
  }

  remove(host: string, path: string): void {
    const before = this.list.length;
    this.list = this.list.filter((entry) => entry.host !== host || entry.path !== path);
    if (this.list.length !== before) this.save();
  }

  private save(): void {
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    const temp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify(this.list), { mode: 0o600 });
    renameSync(temp, this.file);
  }
}
