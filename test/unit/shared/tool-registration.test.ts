import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))
    .map((name) => join(dir, name));
}

describe('tool registration', () => {
  // Output safety (shared/visible-text.ts) is applied in shared/tool-registration.ts; a tool
  // registered around it would hand raw terminal control sequences to the client.
  it('registers every tool through shared/tool-registration.ts', () => {
    const direct = [...sources('shared'), ...sources('worker'), ...sources('relay')].filter(
      (file) => file !== join('shared', 'tool-registration.ts') && /\.registerTool\(/.test(readFileSync(join(root, file), 'utf8')),
    );
    expect(direct).toEqual([]);
  });
});
