import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { inputRequired } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import { safeOutcome } from '../../../shared/tool-registration.ts';

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

describe('what leaves a tool', () => {
  it('passes a question for the caller (input_required) through untouched, and makes a result safe to show', () => {
    const question = inputRequired({
      inputRequests: {
        name: inputRequired.elicit({ message: 'Name?\u001b[2J', requestedSchema: { type: 'object', properties: { name: { type: 'string' } } } }),
      },
    });
    expect(safeOutcome(question, false)).toBe(question);
    const shown = safeOutcome({ content: [{ type: 'text', text: 'A\u001b[31mB' }] }, false);
    expect(shown).toEqual({ content: [{ type: 'text', text: expect.not.stringContaining('\u001b') }] });
  });
});
