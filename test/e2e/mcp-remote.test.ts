/**
 * Claude Desktop through the team server: Claude Desktop speaks only stdio to a command, so it reaches
 * a deployment through `mcp-remote` (a stdio ⇄ Streamable HTTP proxy that signs in with OAuth by
 * opening a browser). Here the real `mcp-remote` runs against the local stack (sshd, the Worker under
 * wrangler dev, the relay), exactly as the README's Claude Desktop snippet starts it, and the SDK client
 * plays Claude Desktop on its stdin/stdout.
 *
 * The browser it opens is a script named by BROWSER that records the URL (the bundled xdg-open falls
 * back to $BROWSER when no desktop is detected, so the child gets no DISPLAY or XDG_CURRENT_DESKTOP);
 * the sign-in page is then filled in as the other tests do, and the callback URL it redirects to is
 * fetched, as the browser would. mcp-remote keeps its tokens under MCP_REMOTE_CONFIG_DIR (a temp dir),
 * listens for the callback on 127.0.0.1 only, and is given only loopback URLs.
 */
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quoteShellWord } from '../../shared/shell-quote.ts';
import { startRelay, type TestRelay } from '../harness/relay.ts';
import { signInThroughForm } from '../harness/sign-in-form.ts';
import { startSshd, type TestSshd } from '../harness/sshd.ts';
import { textOf } from '../harness/stack.ts';
import { isAlive, waitFor } from '../harness/wait.ts';
import { startWorker, type TestWorker } from '../harness/worker.ts';

const require = createRequire(import.meta.url);
const MCP_REMOTE = join(dirname(require.resolve('mcp-remote/package.json')), 'dist', 'proxy.js');

let sshd: TestSshd;
let worker: TestWorker;
let relay: TestRelay;
const dirs: string[] = [];

beforeAll(async () => {
  sshd = await startSshd();
  worker = await startWorker();
  relay = await startRelay(worker, sshd);
});

afterAll(async () => {
  await relay?.stop();
  await worker?.stop();
  await sshd?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Proxy {
  client: Client;
  /** The URLs mcp-remote asked the "browser" to open, in order. */
  openedUrls(): string[];
  /** Where it was told to keep its tokens (MCP_REMOTE_CONFIG_DIR), and its HOME. */
  configDir: string;
  home: string;
  stderr(): string;
  stop(): Promise<void>;
}

/**
 * Start `mcp-remote <url>/mcp` as the README's Claude Desktop snippet does (a command on stdio) and
 * begin the MCP handshake; the handshake completes only once someone signs in at the URL it opens.
 */
function startProxy(extraArgs: string[]): { proxy: Proxy; handshake: Promise<Error | null> } {
  const dir = mkdtempSync(join(tmpdir(), 'mre-mcp-remote-'));
  dirs.push(dir);
  const opened = join(dir, 'opened-urls');
  const browser = join(dir, 'browser.sh');
  const configDir = join(dir, 'tokens');
  // The URL is one argument; it is written down, never run or interpreted.
  writeFileSync(browser, `#!/bin/sh\nprintf '%s\\n' "$1" >> ${quoteShellWord(opened)}\n`);
  chmodSync(browser, 0o755);
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [MCP_REMOTE, worker.mcpUrl, ...extraArgs],
    // Only what it needs: no DISPLAY or desktop variables, so xdg-open falls back to BROWSER; tokens in the temp dir.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, MCP_REMOTE_CONFIG_DIR: configDir, BROWSER: browser },
    cwd: dir,
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-65536);
  });
  const client = new Client({ name: 'claude-desktop-stand-in', version: '1.0.0' });
  // Settles with the failure (mcp-remote exited, sign-in refused) rather than rejecting unobserved.
  const handshake = client.connect(transport).then(
    () => null,
    (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
  );
  const proxy: Proxy = {
    client,
    configDir,
    home: dir,
    openedUrls: () => (existsSync(opened) ? readFileSync(opened, 'utf8').split('\n').filter(Boolean) : []),
    stderr: () => stderr,
    async stop() {
      const pid = transport.pid;
      await client.close().catch(() => undefined);
      // The SDK ends the child on close; make sure, by its PID.
      if (pid !== null && isAlive(pid)) {
        process.kill(pid, 'SIGKILL');
        await waitFor(() => !isAlive(pid), 5_000, `mcp-remote (${pid}) to exit`);
      }
    },
  };
  return { proxy, handshake };
}

/**
 * Sign in at the page mcp-remote opens, then list the tools and run a command on the sshd through it.
 * Returns what mcp-remote printed on stderr.
 */
async function signInListAndRun(extraArgs: string[]): Promise<string> {
  const { proxy, handshake } = startProxy(extraArgs);
  let failed: Error | null = null;
  void handshake.then((error) => (failed = error));
  try {
    await waitFor(() => proxy.openedUrls().length > 0 || failed !== null, 60_000, 'mcp-remote to open the sign-in page');
    if (failed !== null) throw new Error(`mcp-remote stopped before opening a sign-in page (${String(failed)}); its stderr:\n${proxy.stderr()}`);
    const [opened] = proxy.openedUrls();
    const authorizationUrl = new URL(opened ?? '');
    // It found the authorization server through the Worker's metadata and asks for a token for /mcp.
    expect(authorizationUrl.origin).toBe(worker.url);
    expect(authorizationUrl.pathname).toBe('/authorize');
    expect(authorizationUrl.searchParams.get('resource')).toBe(worker.mcpUrl);
    // Its callback is on this machine (it listens on 127.0.0.1 whatever name it registers).
    const redirectUri = authorizationUrl.searchParams.get('redirect_uri') ?? '';
    expect(['localhost', '127.0.0.1']).toContain(new URL(redirectUri).hostname);

    const signedIn = await signInThroughForm(fetch, authorizationUrl, { username: worker.adminUser, password: worker.adminPassword });
    expect(signedIn.status, signedIn.body).toBe(302);
    const callback = new URL(signedIn.location ?? '');
    expect(callback.toString().startsWith(redirectUri)).toBe(true);
    expect(callback.searchParams.get('code')).toBeTruthy();
    // The browser follows the redirect to mcp-remote's callback, which takes the code.
    const reached = await fetch(callback);
    expect(reached.status, await reached.text()).toBe(200);

    const handshakeError = await handshake;
    expect(handshakeError, proxy.stderr()).toBeNull();
    const tools = await proxy.client.listTools();
    const names = tools.tools.map((tool) => tool.name);
    expect(names).toContain('ssh_exec_command');
    expect(names).toContain('ssh_list_hosts');

    // The user name only exists on the test sshd's side, and the marker only in this call.
    const marker = `through-mcp-remote-${Date.now()}`;
    const result = (await proxy.client.callTool({ name: 'ssh_exec_command', arguments: { command: `echo ${marker}; id -un` } })) as CallToolResult;
    expect(result.isError ?? false, textOf(result)).toBe(false);
    expect(textOf(result)).toContain(marker);
    expect(textOf(result)).toContain(sshd.user);
    // Exactly one sign-in was asked for, and its tokens were stored where we told it, not in HOME.
    expect(proxy.openedUrls()).toHaveLength(1);
    expect(readdirSync(proxy.configDir, { recursive: true }).some((name) => String(name).endsWith('tokens.json'))).toBe(true);
    expect(existsSync(join(proxy.home, '.mcp-auth'))).toBe(false);
    return proxy.stderr();
  } finally {
    await proxy.stop();
  }
}

describe('Claude Desktop through mcp-remote', () => {
  it('signs in at the page mcp-remote opens, then lists the tools and runs a command on the host through it', async () => {
    // Exactly the README's snippet: the URL and nothing else.
    const stderr = await signInListAndRun([]);
    // What Claude Desktop's config starts: the 2025-era handshake passed straight through.
    expect(stderr).not.toContain('Remote server speaks MCP');
  });

  it('does the same with --protocol auto (and the callback named 127.0.0.1), where mcp-remote speaks 2026-07-28 to the Worker', async () => {
    const stderr = await signInListAndRun(['--protocol', 'auto', '--host', '127.0.0.1']);
    expect(stderr).toContain('Remote server speaks MCP 2026-07-28');
  });
});
