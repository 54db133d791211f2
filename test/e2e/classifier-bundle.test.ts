/**
 * The Worker's classifier as wrangler bundles it (the deploy path), in local workerd. The Workers
 * test pool loads modules through Vite, where `import.meta.url` is defined; wrangler's bundle has
 * none, which once broke web-tree-sitter's loading there (worker/shell/parser.ts). The entry is
 * bench/classify-worker.ts, the same Worker bench/classify.ts measures.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unstable_dev, type Unstable_DevWorker } from 'wrangler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCorpus } from '../harness/command-corpus.ts';
import { PROJECT_ROOT } from '../harness/worker.ts';

const entry = join(PROJECT_ROOT, 'bench/classify-worker.ts');
const rows = parseCorpus(readFileSync(join(PROJECT_ROOT, 'test/fixtures/command-classes.tsv'), 'utf8'));
let worker: Unstable_DevWorker | undefined;
let dir = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mre-classifier-bundle-'));
  const config = join(dir, 'wrangler.toml');
  // The Worker's own compatibility settings (wrangler.toml), without its bindings.
  writeFileSync(
    config,
    [`name = "classifier-bundle"`, `main = ${JSON.stringify(entry)}`, `compatibility_date = "2026-11-01"`, `compatibility_flags = ["nodejs_compat"]`].join(
      '\n',
    ),
  );
  worker = await unstable_dev(entry, { config, ip: '127.0.0.1', logLevel: 'error', experimental: { disableExperimentalWarning: true } });
});

afterAll(async () => {
  await worker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('classifier in the bundled Worker', () => {
  it('loads tree-sitter from the bundle and classifies corpus rows as Node does', async () => {
    if (worker === undefined) throw new Error('worker did not start');
    const sample = rows.filter((_row, index) => index % 10 === 0);
    const got: Record<string, string> = {};
    const expected: Record<string, string> = {};
    for (const row of sample) {
      const response = await worker.fetch('/', { method: 'POST', body: JSON.stringify({ command: row.command, repeat: 1 }) });
      const body = await response.text();
      expect(response.status, body).toBe(200);
      got[row.command] = (JSON.parse(body) as { class: string }).class;
      expected[row.command] = row.expected;
    }
    expect(sample.length).toBeGreaterThan(50);
    expect(got).toEqual(expected);
  });
});
