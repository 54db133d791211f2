import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VERSION } from '../../../shared/version.ts';

const sharedDir = resolve(import.meta.dirname, '../../../shared');
const files = readdirSync(sharedDir).filter((name) => name.endsWith('.ts'));

describe('shared/', () => {
  it.each(files)('%s imports nothing from node: or cloudflare:', (file) => {
    const source = readFileSync(join(sharedDir, file), 'utf8');
    const imports = [...source.matchAll(/from\s+'([^']+)'/g)].map((match) => match[1]);
    expect(imports.filter((name) => name?.startsWith('node:') || name?.startsWith('cloudflare:'))).toEqual([]);
  });

  it('reports the version package.json declares', () => {
    const pkg: unknown = JSON.parse(readFileSync(resolve(sharedDir, '..', 'package.json'), 'utf8'));
    expect(typeof pkg === 'object' && pkg !== null && 'version' in pkg ? pkg.version : undefined).toBe(VERSION);
  });
});
