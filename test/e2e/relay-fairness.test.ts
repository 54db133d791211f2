/**
 * One user cannot take the relay away from everyone: a viewer fires hundreds of file calls with
 * maximum-length paths (whose errors repeat the path) and an operator hundreds of maximum-length
 * commands, all at once, while another user's calls keep succeeding. Every flood call gets an
 * answer (an error, or relay_busy for its own share), none is left to its deadline.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_COMMAND_LENGTH } from '../../shared/limits.ts';
import { MAX_PATH_LENGTH } from '../../shared/file-tools.ts';
import { adminApi } from '../harness/admin-api.ts';
import { connectMcpClient, type ConnectedClient } from '../harness/mcp-client.ts';
import { remoteProcesses } from '../harness/sshd.ts';
import { startStack, textOf, type Stack } from '../harness/stack.ts';
import { waitFor } from '../harness/wait.ts';

let stack: Stack;
const sessions: ConnectedClient[] = [];

const FLOOD_CALLS = 300;

async function signIn(username: string, password: string): Promise<ConnectedClient> {
  const session = await connectMcpClient(stack.worker.mcpUrl, { username, password });
  sessions.push(session);
  return session;
}

async function call(session: ConnectedClient, name: string, args: Record<string, unknown>): Promise<{ text: string; isError: boolean }> {
  // The client's own timeout is beyond any hub deadline: a call left hanging shows as relay_timeout, not as a client give-up.
  const result = await session.client.callTool({ name, arguments: args }, undefined, { timeout: 240_000 });
  return { text: textOf(result as never), isError: Boolean(result.isError) };
}

/** The error code a tool result names ("Error [code]: …"), or "ok". */
function codeOf(result: { text: string; isError: boolean }): string {
  if (!result.isError) return 'ok';
  return /\[([a-z_]+)\]/.exec(result.text)?.[1] ?? 'unknown';
}

beforeAll(async () => {
  stack = await startStack();
  const admin = adminApi(stack.worker);
  const passwords = new Map<string, string>();
  for (const username of ['vera', 'otto']) {
    const added = await admin.post('users', { username, groups: [] });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    passwords.set(username, String(added.body.password));
  }
  const saved = await admin.put('policy', {
    version: 1,
    grants: [
      { subjects: ['user:vera'], role: 'viewer', hosts: ['*'] },
      { subjects: ['user:otto'], role: 'operator', hosts: ['*'] },
    ],
  });
  expect(saved.status, JSON.stringify(saved.body)).toBe(200);
  await signIn('vera', passwords.get('vera') ?? '');
  await signIn('otto', passwords.get('otto') ?? '');
}, 180_000);

afterAll(async () => {
  for (const session of sessions) await session.close().catch(() => undefined);
  await stack?.stop();
});

describe('a flood from one user', () => {
  it("answers every call with maximum-length paths and commands while another user's calls keep succeeding", async () => {
    const [vera, otto] = sessions;
    if (!vera || !otto) throw new Error('sessions not set up');
    // A path of the maximum length that does not exist: the relay's error repeats it.
    const longPath = `/tmp/${'p'.repeat(MAX_PATH_LENGTH - 5)}`;
    expect(longPath).toHaveLength(MAX_PATH_LENGTH);
    const longCommand = `true ${'#'.repeat(MAX_COMMAND_LENGTH - 5)}`;
    expect(longCommand).toHaveLength(MAX_COMMAND_LENGTH);

    let flooding = true;
    const flood = Promise.all([
      ...Array.from({ length: FLOOD_CALLS }, (_, index) =>
        index % 2 === 0 ? call(vera, 'ssh_read_file', { path: longPath }) : call(vera, 'ssh_list_directory', { path: longPath }),
      ),
      ...Array.from({ length: FLOOD_CALLS / 3 }, () => call(otto, 'ssh_exec_command', { command: longCommand, timeout: 30 })),
    ]).finally(() => {
      flooding = false;
    });
    // The admin (another user) keeps working while the flood is on.
    const others: Array<{ text: string; isError: boolean }> = [];
    do {
      others.push(
        await stack
          .call('ssh_exec_command', { command: `echo still-served-${others.length}`, timeout: 20 })
          .then((result) => ({ text: textOf(result), isError: result.isError === true })),
      );
    } while (flooding && others.length < 200);
    const answers = await flood;

    expect(others.every((result) => !result.isError && result.text.includes('still-served'))).toBe(true);
    const codes = new Map<string, number>();
    for (const answer of answers) codes.set(codeOf(answer), (codes.get(codeOf(answer)) ?? 0) + 1);
    // Each call got an answer of its own: never a timeout, a protocol error or a lost request.
    const allowed = new Set(['ok', 'path_not_found', 'ssh_error', 'relay_busy']);
    expect(
      [...codes.keys()].filter((code) => !allowed.has(code)),
      JSON.stringify(Object.fromEntries(codes)),
    ).toEqual([]);
    // The operator's commands ran (the command is echoed nowhere, but each got its result).
    expect(answers.slice(FLOOD_CALLS).every((answer) => codeOf(answer) === 'ok' || codeOf(answer) === 'relay_busy')).toBe(true);
    expect(answers.slice(FLOOD_CALLS).some((answer) => codeOf(answer) === 'ok')).toBe(true);
    // The file errors came through whole enough to say what happened, cut with a visible marker.
    const fileError = answers.find((answer) => codeOf(answer) === 'ssh_error' || codeOf(answer) === 'path_not_found');
    expect(fileError?.text).toMatch(/more characters\]/);
    // relay_busy, when it comes, names the caller's own share.
    const busy = answers.find((answer) => codeOf(answer) === 'relay_busy');
    if (busy) expect(busy.text).toMatch(/You already have \d+ requests in flight on relay "test-relay"/);
  }, 300_000);
});

describe("a host's SSH channels", () => {
  it("keep room for another user while one user's long commands fill their share", async () => {
    const [, otto] = sessions;
    if (!otto) throw new Error('sessions not set up');
    const marker = `share-${process.pid}`;
    // About 3 s, written as no other test writes it: every test's sshd logs in as the same user, and
    // a `sleep 3` of a file running beside this one would be counted as one of this user's.
    const seconds = `3.${String(process.pid).padStart(8, '0')}`;
    // More long commands than the host's whole pool (4 connections × 8 channels): without a share
    // they would take every channel and queue ahead of everyone else.
    const hog = Array.from({ length: 40 }, () => call(otto, 'ssh_exec_command', { command: `sleep ${seconds}; echo ${marker}`, timeout: 60 }));
    // The sleeps themselves, not the shells whose command lines mention them.
    const running = (): number =>
      remoteProcesses(`sleep ${seconds}`, stack.sshd.user).filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === `sleep\u0000${seconds}\u0000`;
        } catch {
          return false;
        }
      }).length;
    await waitFor(() => running() >= 16, 20_000, "the first user's commands to start");

    // Another user gets a channel at once, within a short timeout.
    const other = await stack.call('ssh_exec_command', { command: 'echo served', timeout: 2 });
    expect(textOf(other)).toContain('served');
    expect(other.structuredContent).toMatchObject({ exit_code: 0 });
    // The first user holds at most their share; their next call waits for one of their own and says so.
    expect(running()).toBeLessThanOrEqual(16);
    const mine = await call(otto, 'ssh_exec_command', { command: 'echo mine', timeout: 1 });
    expect(codeOf(mine)).toBe('host_busy');
    expect(mine.text).toMatch(/You already have 16 commands or file operations running on host "testhost"/);
    expect(mine.text).toContain('other users are not held up');
    // Nothing of theirs is lost: every queued command runs in turn.
    const results = await Promise.all(hog);
    expect(results.every((result) => codeOf(result) === 'ok' && result.text.includes(marker))).toBe(true);
  }, 120_000);
});
