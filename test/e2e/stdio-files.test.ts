import { randomBytes } from 'node:crypto';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CallToolResultSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type TestSshd } from '../harness/sshd.ts';
import { textOf } from '../harness/stack.ts';
import { connectStdio, rawStdioExchange, stdioEnv, type StdioSession } from '../harness/stdio.ts';

/** Small so that files "exactly at the limit" stay quick; the logic does not depend on the value. */
const MAX = 256 * 1024;
let sshd: TestSshd;
let session: StdioSession;
let dir: string; // on the host, relative to the test user's home
let local: string;

beforeAll(async () => {
  sshd = await startSshd();
  session = await connectStdio(stdioEnv(sshd, { MAX_FILE_SIZE: String(MAX), CHARACTER_LIMIT: '1000' }));
  dir = `mre-files-${randomBytes(4).toString('hex')}`;
  local = mkdtempSync(join(tmpdir(), 'mre-local-files-'));
  expect((await call('ssh_write_file', { path: `${dir}/.keep`, content: '', create_dirs: true })).isError).toBeFalsy();
});

afterAll(async () => {
  rmSync(join(sshd.home, dir), { recursive: true, force: true });
  rmSync(local, { recursive: true, force: true });
  await session?.close();
  await sshd?.stop();
});

async function call(name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return CallToolResultSchema.parse(await session.client.callTool({ name, arguments: args }));
}

const onHost = (path: string): string => join(sshd.home, path);
const structured = <T>(result: CallToolResult): T => result.structuredContent as T;

function tempFilesIn(hostDir: string): string[] {
  const listing = readdirNames(onHost(hostDir));
  return listing.filter((name) => name.includes('.mre-') && name.endsWith('.tmp'));
}

function readdirNames(path: string): string[] {
  return existsSync(path) ? readdirSync(path) : [];
}

async function writeBytes(path: string, bytes: Buffer, extra: Record<string, unknown> = {}): Promise<CallToolResult> {
  return call('ssh_write_file', { path, content: bytes.toString('base64'), encoding: 'base64', ...extra });
}

async function readBytes(path: string): Promise<Buffer> {
  const result = await call('ssh_read_file', { path, encoding: 'base64' });
  expect(result.isError, textOf(result)).toBeFalsy();
  return Buffer.from(structured<{ content: string }>(result).content, 'base64');
}

describe('byte-exact round trips', () => {
  it.each([
    ['an empty file', Buffer.alloc(0)],
    ['a binary file', randomBytes(100_003)],
    ['a file exactly at MAX_FILE_SIZE', randomBytes(MAX)],
  ])('writes and reads back %s unchanged, reporting its SHA-256', async (_label, bytes) => {
    const path = `${dir}/rt-${randomBytes(3).toString('hex')}`;
    const written = await writeBytes(path, bytes);
    expect(written.isError, textOf(written)).toBeFalsy();
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    expect(structured(written)).toMatchObject({ size: bytes.length, sha256, replaced: false });
    expect(readFileSync(onHost(path)).equals(bytes)).toBe(true);
    expect((await readBytes(path)).equals(bytes)).toBe(true);
  });

  it('uploads and downloads a binary file at MAX_FILE_SIZE unchanged', async () => {
    const bytes = randomBytes(MAX);
    const source = join(local, 'up.bin');
    writeFileSync(source, bytes);
    const remote = `${dir}/uploaded.bin`;
    const up = await call('ssh_upload_file', { local_path: source, remote_path: remote });
    expect(up.isError, textOf(up)).toBeFalsy();
    expect(readFileSync(onHost(remote)).equals(bytes)).toBe(true);
    const target = join(local, 'down.bin');
    const down = await call('ssh_download_file', { remote_path: remote, local_path: target });
    expect(down.isError, textOf(down)).toBeFalsy();
    expect(readFileSync(target).equals(bytes)).toBe(true);
  });
});

describe('limits and atomicity', () => {
  it('refuses one byte over MAX_FILE_SIZE before writing anything', async () => {
    const path = `${dir}/too-big`;
    const result = await writeBytes(path, randomBytes(MAX + 1));
    expect(textOf(result)).toContain('Error [file_too_large]');
    expect(existsSync(onHost(path))).toBe(false);
    expect(tempFilesIn(dir)).toEqual([]);
  });

  it('leaves an existing file as it was when a replacement is refused, with no temporary file behind', async () => {
    const path = `${dir}/keep-me`;
    await writeBytes(path, Buffer.from('original'));
    const source = join(local, 'big.bin');
    writeFileSync(source, randomBytes(MAX + 1));
    const result = await call('ssh_upload_file', { local_path: source, remote_path: path, overwrite: true });
    expect(textOf(result)).toContain('Error [file_too_large]');
    expect(readFileSync(onHost(path), 'utf8')).toBe('original');
    expect(tempFilesIn(dir)).toEqual([]);
  });

  it('never overwrites by default, and replaces atomically when asked, keeping the mode', async () => {
    const path = `${dir}/config`;
    await call('ssh_write_file', { path, content: 'one', permissions: 600 });
    const refused = await call('ssh_write_file', { path, content: 'two' });
    expect(textOf(refused)).toContain('Error [already_exists]');
    expect(readFileSync(onHost(path), 'utf8')).toBe('one');
    const replaced = await call('ssh_write_file', { path, content: 'two', overwrite: true });
    expect(structured(replaced)).toMatchObject({ replaced: true, mode: '0600' });
    expect(readFileSync(onHost(path), 'utf8')).toBe('two');
  });

  it('lets exactly one of several concurrent writers create a new file', async () => {
    const path = `${dir}/race`;
    const results = await Promise.all(Array.from({ length: 8 }, (_, index) => call('ssh_write_file', { path, content: `writer ${index}` })));
    const winners = results.filter((result) => !result.isError);
    expect(winners).toHaveLength(1);
    for (const loser of results.filter((result) => result.isError)) expect(textOf(loser)).toContain('Error [already_exists]');
    const winnerIndex = results.indexOf(winners[0] as CallToolResult);
    expect(readFileSync(onHost(path), 'utf8')).toBe(`writer ${winnerIndex}`);
    expect(tempFilesIn(dir)).toEqual([]);
  });
});

describe('permissions', () => {
  it.each([
    [644, '0644'],
    ['0600', '0600'],
    ['755', '0755'],
  ])('sets %j as %s', async (permissions, mode) => {
    const path = `${dir}/perm-${mode}-${randomBytes(2).toString('hex')}`;
    const result = await call('ssh_write_file', { path, content: 'x', permissions });
    expect(structured(result)).toMatchObject({ mode });
    expect(statSync(onHost(path)).mode & 0o7777).toBe(Number.parseInt(mode, 8));
  });

  it.each([['999'], ['rwxr-xr-x'], [1.5], ['0o644'], [-644], ['64']])('refuses %j as a validation error', async (permissions) => {
    const result = await call('ssh_write_file', { path: `${dir}/never`, content: 'x', permissions });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('permissions must be octal digits such as 644, 0600 or 755');
    expect(existsSync(onHost(`${dir}/never`))).toBe(false);
  });
});

describe('paths', () => {
  it.each([
    ['an empty path', '', 'path must not be empty'],
    ['a NUL byte', 'a\u0000b', 'path must not contain NUL bytes'],
    ['an over-long path', 'x'.repeat(4097), 'path must be at most 4096 characters'],
  ])('refuses %s as a validation error', async (_label, path, message) => {
    const result = await call('ssh_write_file', { path, content: 'x' });
    expect(textOf(result)).toContain(message);
  });

  it('gives distinct errors for a directory, a missing parent and a denied path', async () => {
    expect(textOf(await call('ssh_write_file', { path: dir, content: 'x' }))).toContain('Error [path_is_directory]');
    expect(textOf(await call('ssh_read_file', { path: dir }))).toContain('Error [path_is_directory]');
    expect(textOf(await call('ssh_write_file', { path: `${dir}/no/such/dir/file`, content: 'x' }))).toContain('Error [path_not_found]: The directory');
    expect(textOf(await call('ssh_read_file', { path: `${dir}/missing` }))).toContain('Error [path_not_found]');
    expect(textOf(await call('ssh_write_file', { path: '/root/forbidden', content: 'x' }))).toContain('Error [permission_denied]');
    expect(textOf(await call('ssh_list_directory', { path: `${dir}/.keep` }))).toContain('Error [not_a_directory]');
  });

  it('creates missing directories when asked', async () => {
    const result = await call('ssh_write_file', { path: `${dir}/made/on/demand.txt`, content: 'deep', create_dirs: true });
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(readFileSync(onHost(`${dir}/made/on/demand.txt`), 'utf8')).toBe('deep');
  });

  it('takes names with quotes, spaces and shell syntax literally (no shell is involved)', async () => {
    const name = `a b'c$(touch pwned)\`id\`;x`;
    const result = await call('ssh_write_file', { path: `${dir}/${name}`, content: 'literal' });
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(readFileSync(onHost(`${dir}/${name}`), 'utf8')).toBe('literal');
    expect(existsSync(onHost('pwned'))).toBe(false);
    expect(existsSync(onHost(`${dir}/pwned`))).toBe(false);
  });
});

describe('reading and listing', () => {
  it('returns text with size, mode and mtime, and says where to continue when it is cut', async () => {
    const path = `${dir}/long.txt`;
    const text = 'é'.repeat(1500); // 1,500 characters, 3,000 bytes; CHARACTER_LIMIT is 1,000
    await call('ssh_write_file', { path, content: text });
    const first = await call('ssh_read_file', { path });
    const part = structured<{ content: string; encoding: string; truncated: boolean; next_offset: number; size: number; mode: string; mtime: string }>(first);
    expect(part).toMatchObject({ encoding: 'utf8', truncated: true, next_offset: 2000, size: 3000, mode: '0644' });
    expect(part.content).toBe('é'.repeat(1000));
    expect(textOf(first)).toContain('Read the rest with offset=2000.');
    const rest = structured<{ content: string; truncated: boolean }>(await call('ssh_read_file', { path, offset: 2000 }));
    expect(rest).toMatchObject({ content: 'é'.repeat(500), truncated: false });
  });

  it('returns binary content as base64 automatically', async () => {
    const bytes = Buffer.from([0, 255, 1, 254, 0x80]);
    await writeBytes(`${dir}/bin`, bytes);
    const result = structured<{ encoding: string; content: string }>(await call('ssh_read_file', { path: `${dir}/bin` }));
    expect(result.encoding).toBe('base64');
    expect(Buffer.from(result.content, 'base64').equals(bytes)).toBe(true);
  });

  it('lists names, types, sizes and modes', async () => {
    const result = await call('ssh_list_directory', { path: dir, response_format: 'json' });
    const listing = structured<{ entries: Array<{ name: string; type: string; size: number; mode: string }> }>(result);
    expect(listing.entries.find((entry) => entry.name === 'made')).toMatchObject({ type: 'directory' });
    expect(listing.entries.find((entry) => entry.name === 'keep-me')).toMatchObject({ type: 'file', size: 8 });
  });
});

describe('progress', () => {
  // Checked on the wire: the SDK client handles a notification a microtask after the data
  // arrives, so one sent just before the result can reach it after the request resolved.
  it('sends progress up to the total before the result, for an upload and a download', async () => {
    const source = join(local, 'progress.bin');
    writeFileSync(source, randomBytes(MAX));
    const initialize = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    };
    const call = (id: number, name: string, args: Record<string, unknown>) => ({
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: { name, arguments: args, _meta: { progressToken: `p${id}` } },
    });
    const exchange = async (request: Record<string, unknown>): Promise<string[]> =>
      (await rawStdioExchange(stdioEnv(sshd, { MAX_FILE_SIZE: String(MAX) }), [initialize, { jsonrpc: '2.0', method: 'notifications/initialized' }, request]))
        .stdout;
    const stdout = [
      ...(await exchange(call(2, 'ssh_upload_file', { local_path: source, remote_path: `${dir}/progress.bin` }))),
      ...(await exchange(call(3, 'ssh_download_file', { remote_path: `${dir}/progress.bin`, local_path: join(local, 'progress-back.bin') }))),
    ];
    const messages = stdout.map(
      (line) => JSON.parse(line) as { id?: number; method?: string; params?: { progressToken?: string; progress?: number; total?: number } },
    );
    for (const id of [2, 3]) {
      const resultAt = messages.findIndex((message) => message.id === id);
      const progress = messages.filter(
        (message, index) => message.method === 'notifications/progress' && message.params?.progressToken === `p${id}` && index < resultAt,
      );
      expect(resultAt).toBeGreaterThan(0);
      expect(progress.at(-1)?.params).toMatchObject({ progress: MAX, total: MAX });
    }
  });
});

describe('downloads to the local machine', () => {
  it('never overwrites a local file unless asked', async () => {
    const target = join(local, 'existing.txt');
    writeFileSync(target, 'local');
    const refused = await call('ssh_download_file', { remote_path: `${dir}/keep-me`, local_path: target });
    expect(textOf(refused)).toContain('Error [already_exists]');
    expect(readFileSync(target, 'utf8')).toBe('local');
    const replaced = await call('ssh_download_file', { remote_path: `${dir}/keep-me`, local_path: target, overwrite: true });
    expect(structured(replaced)).toMatchObject({ replaced: true, size: 8 });
    expect(readFileSync(target, 'utf8')).toBe('original');
  });

  it('refuses a local directory as the target and a missing remote file', async () => {
    expect(textOf(await call('ssh_download_file', { remote_path: `${dir}/keep-me`, local_path: local }))).toContain('Error [path_is_directory]');
    expect(textOf(await call('ssh_download_file', { remote_path: `${dir}/nope`, local_path: join(local, 'nope') }))).toContain('Error [path_not_found]');
  });
});
