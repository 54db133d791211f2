import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { offlineWranglerEnv, PROJECT_ROOT } from '../harness/worker.ts';

const require = createRequire(import.meta.url);

describe('npm run deploy', () => {
  it('bundles the Worker for Cloudflare with its bindings (wrangler deploy --dry-run)', () => {
    const outdir = mkdtempSync(join(tmpdir(), 'mre-bundle-'));
    try {
      const wrangler = join(dirname(require.resolve('wrangler/package.json')), 'bin', 'wrangler.js');
      const result = spawnSync(process.execPath, [wrangler, 'deploy', '--dry-run', '--outdir', outdir], {
        cwd: PROJECT_ROOT,
        env: offlineWranglerEnv(),
        encoding: 'utf8',
        timeout: 120_000,
      });
      const output = `${result.stdout}${result.stderr}`;
      expect(result.status, output).toBe(0);
      expect(output).toContain('env.MCP_SESSION (McpSession)');
      expect(output).toContain('env.RELAY_HUB (RelayHub)');
      expect(output).toContain('env.OAUTH_KV');
      expect(readdirSync(outdir)).toContain('index.js');
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });
});
