import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UnfinishedWrites } from '../../../relay/unfinished-writes.ts';

process.env.LOG_LEVEL = 'error';
const dirs: string[] = [];
const stateDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'mre-unfinished-'));
  dirs.push(dir);
  return dir;
};

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('the journal of unfinished writes', () => {
  it('never offers a write in progress for clean-up, only ones given up', () => {
    const journal = new UnfinishedWrites(stateDir());
    journal.add('web1', '/srv/.a.mre-1.tmp');
    journal.add('web1', '/srv/.b.mre-2.tmp');
    expect(journal.leftovers()).toEqual([]);
    journal.abandon('web1', '/srv/.b.mre-2.tmp');
    expect(journal.leftovers().map((entry) => entry.path)).toEqual(['/srv/.b.mre-2.tmp']);
    journal.remove('web1', '/srv/.a.mre-1.tmp');
    journal.remove('web1', '/srv/.b.mre-2.tmp');
    expect(journal.leftovers()).toEqual([]);
  });

  it('adopts the entries of a process that is gone, and leaves a running one alone', () => {
    const dir = stateDir();
    // PID 2147483646 is not running; the test's own parent is.
    writeFileSync(join(dir, 'unfinished-writes-2147483646.json'), JSON.stringify([{ host: 'db1', path: '/tmp/.x.mre-1.tmp', since: '2026-01-01T00:00:00Z' }]));
    writeFileSync(
      join(dir, `unfinished-writes-${process.ppid}.json`),
      JSON.stringify([{ host: 'db1', path: '/tmp/.live.mre-2.tmp', since: '2026-01-01T00:00:00Z' }]),
    );
    const journal = new UnfinishedWrites(dir);
    expect(journal.leftovers().map((entry) => entry.path)).toEqual(['/tmp/.x.mre-1.tmp']);
    expect(readdirSync(dir).sort()).toEqual([`unfinished-writes-${process.pid}.json`, `unfinished-writes-${process.ppid}.json`].sort());
  });

  it('survives an unreadable file from a crashed process', () => {
    const dir = stateDir();
    writeFileSync(join(dir, 'unfinished-writes-2147483646.json'), '{not json');
    expect(new UnfinishedWrites(dir).leftovers()).toEqual([]);
  });
});
