import { describe, expect, it } from 'vitest';
import { adviceFor, ERROR_CODES } from '../../../shared/errors.ts';
import { execCommandInput } from '../../../shared/tool-catalog.ts';

const input = execCommandInput({ characterLimit: 25_000, defaultTimeoutSeconds: 30 });

function problem(args: unknown): string {
  const parsed = input.safeParse(args);
  if (parsed.success) throw new Error('expected a validation error');
  return parsed.error.issues.map((issue) => issue.message).join('; ');
}

describe('ssh_exec_command arguments', () => {
  it('fills in the seed defaults', () => {
    expect(input.parse({ command: 'uptime' })).toEqual({ command: 'uptime', timeout: 30, response_format: 'text', pty: false });
  });

  it('takes a terminal size only with pty: true, and within bounds', () => {
    expect(input.parse({ command: 'top -b -n1', pty: true, pty_rows: 50, pty_cols: 132 })).toMatchObject({ pty: true, pty_rows: 50, pty_cols: 132 });
    expect(input.safeParse({ command: 'x', pty_rows: 50 }).success).toBe(false);
    expect(input.safeParse({ command: 'x', pty: false, pty_cols: 80 }).success).toBe(false);
    for (const size of [0, 1001, 1.5, -1, '24']) {
      expect(input.safeParse({ command: 'x', pty: true, pty_rows: size }).success).toBe(false);
      expect(input.safeParse({ command: 'x', pty: true, pty_cols: size }).success).toBe(false);
    }
    expect(input.safeParse({ command: 'x', pty: 'yes' }).success).toBe(false);
  });

  it('accepts the limits themselves', () => {
    expect(input.safeParse({ command: 'x'.repeat(10_000), timeout: 300 }).success).toBe(true);
    expect(input.safeParse({ command: 'x', timeout: 1 }).success).toBe(true);
  });

  it.each([
    [{ command: '' }, 'command must not be empty'],
    [{ command: '   ' }, 'command must contain something other than whitespace'],
    [{ command: 'x'.repeat(10_001) }, 'command must be at most 10,000 characters'],
    [{ command: 'echo a\0b' }, 'command must not contain NUL bytes'],
    [{ command: 'ls', timeout: 0 }, 'timeout must be at least 1 second'],
    [{ command: 'ls', timeout: 301 }, 'timeout must be at most 300 seconds'],
    [{ command: 'ls', timeout: 1.5 }, 'timeout must be a whole number of seconds'],
    [{ command: 'ls', timeout: '30' }, 'timeout must be a number'],
    [{ command: 42 }, 'command must be a string'],
    [{ command: 'ls', response_format: 'xml' }, 'response_format must be "text" or "json"'],
    [{ command: 'ls', cwd: '/tmp' }, 'Unrecognized key'],
    [{}, 'command must be a string'],
  ])('refuses %j with a message that names the problem', (args, message) => {
    expect(problem(args)).toContain(message);
  });
});

describe('error advice', () => {
  it.each(ERROR_CODES)('tells the reader what to do about %s', (code) => {
    expect(adviceFor(code).length).toBeGreaterThan(20);
  });
});
