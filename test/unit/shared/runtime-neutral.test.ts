import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VERSION } from '../../../shared/version.ts';

const root = resolve(import.meta.dirname, '../../..');
const sharedDir = join(root, 'shared');

/** Every .ts file under `dir`, subfolders included, as paths relative to the repository root. */
function sourcesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => relative(root, join(dir, name)))
    .sort();
}

// Files outside shared/ that Node scripts (scripts/*.ts) import as well as the Worker.
const alsoNeutral = ['worker/auth/password-hash.ts'];
const files = [...sourcesUnder(sharedDir), ...alsoNeutral];

/** Every module a file names: static imports, re-exports, side-effect imports and dynamic import(). */
function importedModules(source: string): string[] {
  const patterns = [/\bfrom\s+['"]([^'"]+)['"]/g, /\bimport\s+['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g];
  return patterns.flatMap((pattern) => [...source.matchAll(pattern)].map((match) => match[1] ?? ''));
}

const runtimeSpecific = (name: string): boolean =>
  name.startsWith('node:') || name.startsWith('cloudflare:') || builtinModules.includes(name) || builtinModules.includes(name.split('/')[0] ?? '');

describe('shared/', () => {
  it('covers the files in subfolders too', () => {
    expect(files.some((file) => file.startsWith('shared/imagekit/'))).toBe(true);
  });

  it.each(files)('%s imports nothing from node: or cloudflare:', (file) => {
    const source = readFileSync(join(root, file), 'utf8');
    expect(importedModules(source).filter(runtimeSpecific)).toEqual([]);
  });

  it('reports the version package.json declares', () => {
    const pkg: unknown = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(typeof pkg === 'object' && pkg !== null && 'version' in pkg ? pkg.version : undefined).toBe(VERSION);
  });
});
