/**
 * The relay as a LAN box gets it: the package as `npm pack` makes it (what `npm publish` uploads),
 * installed as `npm install -g` does into an empty prefix (the layout of /usr/local), run through
 * the `mcp-remote-exec` executable npm links. It must connect to the Worker and run a command with
 * only its own dependencies; the systemd unit that ships with it must fit that install.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMcpClient } from '../harness/mcp-client.ts';
import { startRelay } from '../harness/relay.ts';
import { startSshd, type TestSshd } from '../harness/sshd.ts';
import { textOf } from '../harness/stack.ts';
import { startRegistryStandIn } from '../harness/npm-registry-stand-in.ts';
import { PROJECT_ROOT, startWorker, type TestWorker } from '../harness/worker.ts';
import { VERSION } from '../../shared/version.ts';

let dir: string;
let tarball: string;
let bin: string;
let installed: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mre-package-'));
  // --ignore-scripts: `prepare` would rebuild dist/ under the other test files; the e2e global setup built it already.
  const packed: unknown = JSON.parse(
    execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: PROJECT_ROOT, encoding: 'utf8' }),
  );
  const filename = Array.isArray(packed) && typeof packed[0] === 'object' && packed[0] !== null && 'filename' in packed[0] ? String(packed[0].filename) : '';
  tarball = join(dir, filename);
  const prefix = join(dir, 'prefix');
  mkdirSync(prefix);
  // The registry is a stand-in on loopback (tests reach nothing else), serving the dependencies the
  // lockfile pins from the local npm cache; npm itself starts from an empty cache, as on a new box.
  const npmCache = execFileSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).trim();
  const registry = await startRegistryStandIn(PROJECT_ROOT, npmCache);
  try {
    // An empty prefix, and a cwd outside the checkout, so nothing of the project's node_modules can be found.
    // Asynchronously: the stand-in answers from this very process.
    const install = await runNpm(
      [
        'install',
        '--global',
        '--prefix',
        prefix,
        '--registry',
        `${registry.url}/`,
        '--cache',
        join(dir, 'npm-cache'),
        '--no-audit',
        '--no-fund',
        '--no-update-notifier',
        '--loglevel',
        'error',
        tarball,
      ],
      dir,
    );
    if (install.code !== 0) {
      const missing = registry.missing.length > 0 ? ` Not in the npm cache (run npm install first): ${registry.missing.join(', ')}` : '';
      throw new Error(`npm install -g of the packed tarball failed (exit ${install.code}): ${install.stderr}${missing}`);
    }
  } finally {
    await registry.stop();
  }
  bin = join(prefix, 'bin', 'mcp-remote-exec');
  installed = join(prefix, 'lib', 'node_modules', 'mcp-remote-exec');
}, 150_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** npm, run without blocking this process (bounded at two minutes). */
function runNpm(args: string[], cwd: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('npm', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr = (stderr + text).slice(-8192);
    });
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

function run(args: string[]): string {
  return execFileSync(bin, args, { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir } });
}

describe('the packed and installed package', () => {
  it('holds the built command and the systemd unit, not the tests or the sources', () => {
    const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n');
    expect(files).toContain('package/dist/mcp-remote-exec.mjs');
    expect(files).toContain('package/relay/systemd/mcp-remote-exec-relay.service');
    // The sources stay out: the only file under relay/ is the unit itself.
    expect(files.filter((file) => /^package\/(test|worker|relay|shared|bench)\//.test(file))).toEqual(['package/relay/systemd/mcp-remote-exec-relay.service']);
    // Only its own dependencies came along: none of the development tools.
    const names = readdirSync(join(installed, 'node_modules'));
    for (const dev of ['wrangler', 'vitest', 'typescript', 'esbuild', 'node']) expect(names).not.toContain(dev);
    expect(names).toContain('ssh2');
    // No install script of its own: npm (12 blocks unreviewed ones) has nothing of ours to run or ask about.
    const manifest: unknown = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
    const scripts = typeof manifest === 'object' && manifest !== null && 'scripts' in manifest && typeof manifest.scripts === 'object' ? manifest.scripts : {};
    expect(Object.keys(scripts ?? {}).filter((name) => ['preinstall', 'install', 'postinstall'].includes(name))).toEqual([]);
  });

  it('prints its version and the relay help', () => {
    expect(run(['--version']).trim()).toBe(VERSION);
    expect(run(['relay', '--help'])).toContain('Usage: mcp-remote-exec relay');
  });

  describe('as a relay connected to the Worker', () => {
    let sshd: TestSshd;
    let worker: TestWorker;

    beforeAll(async () => {
      sshd = await startSshd();
      worker = await startWorker();
    }, 120_000);

    afterAll(async () => {
      await worker?.stop();
      await sshd?.stop();
    });

    it('runs a command for an MCP client', async () => {
      const relay = await startRelay(worker, sshd, { command: bin });
      try {
        const mcp = await connectMcpClient(worker.mcpUrl, { username: worker.adminUser, password: worker.adminPassword });
        try {
          const result = CallToolResultSchema.parse(await mcp.client.callTool({ name: 'ssh_exec_command', arguments: { command: 'echo packaged-$((6*7))' } }));
          expect(textOf(result)).toContain('packaged-42');
        } finally {
          await mcp.close();
        }
        expect(relay.process.output()).toContain(`"version":"${VERSION}"`);
      } finally {
        await relay.stop();
      }
    });
  });

  describe('the systemd unit it ships', () => {
    const unitName = 'mcp-remote-exec-relay.service';
    const unit = (): string => readFileSync(join(installed, 'relay', 'systemd', unitName), 'utf8');
    const settings = (key: string): string[] => [...unit().matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((match) => match[1] ?? '');

    it("runs the relay from npm -g's bin directory as mcp-relay, with its settings file, restarts and state directory", () => {
      // The test's prefix stands for /usr/local, where `sudo npm install -g` puts the same files.
      expect(settings('ExecStart')).toEqual(['/usr/local/bin/mcp-remote-exec relay']);
      expect(bin).toBe(join(dir, 'prefix', 'bin', 'mcp-remote-exec'));
      expect(settings('User')).toEqual(['mcp-relay']);
      expect(settings('EnvironmentFile')).toEqual(['/etc/mcp-remote-exec/relay.env']);
      expect(settings('Restart')).toEqual(['on-failure']);
      expect(settings('StateDirectory')).toEqual(['mcp-remote-exec']);
      expect(settings('Environment')).toContain('MCP_REMOTE_EXEC_STATE_DIR=/var/lib/mcp-remote-exec');
      // ssh2 needs TCP (v4 and v6) and an ssh-agent a UNIX socket; V8 needs writable executable memory.
      expect(settings('RestrictAddressFamilies')).toEqual(['AF_INET AF_INET6 AF_UNIX']);
      expect(settings('MemoryDenyWriteExecute')).toEqual([]);
    });

    it('passes systemd-analyze verify with no warning, and its security review rates it OK or better', () => {
      const check = mkdtempSync(join(dir, 'unit-'));
      const path = join(check, unitName);
      // The same unit, with ExecStart in the test's prefix instead of /usr/local (verify checks the file is executable).
      writeFileSync(path, unit().replaceAll('/usr/local/bin/mcp-remote-exec', bin));
      const verify = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' });
      expect({ status: verify.status, output: verify.stdout + verify.stderr }).toEqual({ status: 0, output: '' });
      // Exposure on systemd's 0-10 scale, as a threshold of 0-100: 2.5 and below is "OK" or "SAFE".
      const security = spawnSync('systemd-analyze', ['security', '--offline=yes', '--threshold=25', path], { encoding: 'utf8' });
      expect(security.stdout).toMatch(/Overall exposure level for mcp-remote-exec-relay\.service: \d\.\d (OK|SAFE)/);
      expect(security.status).toBe(0);
    });
  });
});
