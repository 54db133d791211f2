/**
 * A relay whose TCP connection goes half-open (a proxy stops forwarding, closes nothing): both
 * sides must notice within two heartbeat intervals, the caller must hear "relay disconnected,
 * outcome unknown" at once, and the relay must reconnect and serve the next call.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../harness/ports.ts';
import { startStack, textOf, type Stack } from '../harness/stack.ts';
import { startStallingProxy, type StallingProxy } from '../harness/stalling-proxy.ts';

/** Short heartbeats (hub and relay agree) so the test waits seconds, not the default 30. */
const HEARTBEAT_MS = 1000;

let stack: Stack;
let proxy: StallingProxy;

beforeAll(async () => {
  const workerPort = await freePort();
  proxy = await startStallingProxy(workerPort);
  stack = await startStack({
    worker: { port: workerPort },
    workerVars: { RELAY_HEARTBEAT_MS: String(HEARTBEAT_MS) },
    relay: { env: { RELAY_URL: proxy.url, RELAY_HEARTBEAT_MS: String(HEARTBEAT_MS) } },
  });
});

afterAll(async () => {
  await stack?.stop();
  await proxy?.stop();
});

/** Whether a process whose command line contains `marker` is running (the remote command under the test sshd). */
function running(marker: string): boolean {
  try {
    execFileSync('pgrep', ['-f', marker], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function until(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('a half-open relay connection', () => {
  it('fails the call in flight with relay_disconnected long before its deadline, and the relay comes back', async () => {
    expect(proxy.connections()).toBeGreaterThan(0);
    const marker = `half-open-${Date.now().toString(36)}`;
    const timeoutSeconds = 120;
    const started = performance.now();
    // `sleep 60` under a name pgrep can find; it runs until it is stopped.
    const call = stack.call('ssh_exec_command', { command: `exec -a ${marker} sleep 60`, timeout: timeoutSeconds });
    await until(() => running(marker), 'the remote command started');
    const relayLog = stack.relay.process.mark();
    proxy.stall();

    const result = await call;
    const elapsedMs = performance.now() - started;
    const text = textOf(result);
    expect(result.isError).toBe(true);
    expect(text).toContain('relay_disconnected');
    expect(text).toMatch(/outcome is unknown/);
    // Compared with the call's own deadline, not with this machine's speed: a hang would last it out.
    expect(elapsedMs).toBeLessThan((timeoutSeconds * 1000) / 4);

    // The relay notices too (its pings go unanswered), drops the socket and stops the remote work.
    await stack.relay.process.waitFor(/hub stopped answering heartbeats/, 30_000);
    expect(stack.relay.process.outputSince(relayLog)).toMatch(/hub stopped answering heartbeats/);
    await until(() => !running(marker), 'the remote command stopped');

    proxy.resume();
    await stack.relay.connected(2, 60_000);
    const next = await stack.call('ssh_exec_command', { command: 'echo back', timeout: 20 });
    expect(next.isError).not.toBe(true);
    expect(textOf(next)).toContain('back');
  });
});
