import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, textOf, type Stack } from '../harness/stack.ts';

/**
 * Two stream windows (1 MiB each) of 64 KiB chunks, so credit-based flow control is exercised.
 * 2 MiB also keeps the base64 request under the MCP transport's 4 MB body limit.
 */
const MAX = 2 * 1024 * 1024;
/** Reads through the Worker return at most this per call (worker/settings.ts). */
const READ_PER_CALL = 1024 * 1024;

async function readAll(path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let offset: number | null = 0;
  for (let call = 0; offset !== null && call < 10; call += 1) {
    const read = await stack.call('ssh_read_file', { path, encoding: 'base64', offset });
    expect(read.isError, textOf(read)).toBeFalsy();
    const part = structured<{ content: string; next_offset: number | null; bytes: number }>(read);
    expect(part.bytes).toBeLessThanOrEqual(READ_PER_CALL);
    parts.push(Buffer.from(part.content, 'base64'));
    offset = part.next_offset;
  }
  return Buffer.concat(parts);
}
let stack: Stack;
const dir = `mre-wfiles-${randomBytes(4).toString('hex')}`;

beforeAll(async () => {
  stack = await startStack({ workerVars: { MAX_FILE_SIZE: String(MAX), CHARACTER_LIMIT: '1000' } });
  const made = await stack.call('ssh_write_file', { path: `${dir}/.keep`, content: '', create_dirs: true });
  expect(made.isError, textOf(made)).toBeFalsy();
});

afterAll(async () => {
  if (stack) rmSync(join(stack.sshd.home, dir), { recursive: true, force: true });
  await stack?.stop();
});

const onHost = (path: string): string => join(stack.sshd.home, path);
const structured = <T>(result: CallToolResult): T => result.structuredContent as T;

describe('file tools through the Worker and the relay', () => {
  it.each([
    ['an empty file', 0],
    ['a binary file of more than one stream window', 1024 * 1024 + 12_345],
    ['a file exactly at MAX_FILE_SIZE', MAX],
  ])('round-trips %s byte for byte (read in parts of at most 1 MiB)', async (_label, size) => {
    const bytes = randomBytes(size);
    const path = `${dir}/rt-${size}`;
    const written = await stack.call('ssh_write_file', { path, content: bytes.toString('base64'), encoding: 'base64' });
    expect(written.isError, textOf(written)).toBeFalsy();
    expect(structured(written)).toMatchObject({ size, sha256: createHash('sha256').update(bytes).digest('hex') });
    expect(readFileSync(onHost(path)).equals(bytes)).toBe(true);
    expect((await readAll(path)).equals(bytes)).toBe(true);
  });

  it('refuses one byte over MAX_FILE_SIZE and writes nothing', async () => {
    const path = `${dir}/too-big`;
    const result = await stack.call('ssh_write_file', { path, content: randomBytes(MAX + 1).toString('base64'), encoding: 'base64' });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/file_too_large|larger than MAX_FILE_SIZE/);
    expect(existsSync(onHost(path))).toBe(false);
    expect(readdirSync(onHost(dir)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('keeps overwrite=false race-safe through the relay', async () => {
    const path = `${dir}/race`;
    const results = await Promise.all(Array.from({ length: 6 }, (_, index) => stack.call('ssh_write_file', { path, content: `w${index}` })));
    expect(results.filter((result) => !result.isError)).toHaveLength(1);
    for (const loser of results.filter((result) => result.isError)) expect(textOf(loser)).toContain('Error [already_exists]');
  });

  it('reads text in parts and lists the directory', async () => {
    await stack.call('ssh_write_file', { path: `${dir}/text.txt`, content: 'ab'.repeat(800) });
    const first = structured<{ content: string; next_offset: number }>(await stack.call('ssh_read_file', { path: `${dir}/text.txt` }));
    expect(first).toMatchObject({ next_offset: 1000 });
    expect(first.content).toHaveLength(1000);
    const rest = structured<{ content: string; truncated: boolean }>(await stack.call('ssh_read_file', { path: `${dir}/text.txt`, offset: 1000 }));
    expect(first.content + rest.content).toBe('ab'.repeat(800));
    const listing = structured<{ entries: Array<{ name: string; type: string }> }>(
      await stack.call('ssh_list_directory', { path: dir, response_format: 'json' }),
    );
    expect(listing.entries.map((entry) => entry.name)).toContain('text.txt');
  });

  it('reports path errors with their codes', async () => {
    expect(textOf(await stack.call('ssh_read_file', { path: `${dir}/missing` }))).toContain('Error [path_not_found]');
    expect(textOf(await stack.call('ssh_read_file', { path: dir }))).toContain('Error [path_is_directory]');
    expect(textOf(await stack.call('ssh_write_file', { path: '/root/denied', content: 'x' }))).toContain('Error [permission_denied]');
  });
});
