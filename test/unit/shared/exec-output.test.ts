import { describe, expect, it } from 'vitest';
import { cutAt, execStructuredOutput, formatExecResult, shareBudget, type ExecOutcome } from '../../../shared/exec-output.ts';

function outcome(overrides: Partial<ExecOutcome> = {}): ExecOutcome {
  return {
    host: 'web1',
    exitCode: 0,
    signal: null,
    timedOut: false,
    cancelled: false,
    stopConfirmed: true,
    processesLeft: [],
    stdout: '',
    stderr: '',
    stdoutBytes: 0,
    stderrBytes: 0,
    stdoutTruncated: false,
    stderrTruncated: false,
    durationMs: 12.4,
    timeoutMs: 30_000,
    ...overrides,
  };
}

describe('formatExecResult', () => {
  it('writes stdout, stderr and the exit code in separate sections', () => {
    const { text, isError } = formatExecResult(outcome({ stdout: 'out\n', stderr: 'err\n', stdoutBytes: 4, stderrBytes: 4, exitCode: 2 }), 'text', 100);
    expect(text).toBe('STDOUT:\nout\n\n\nSTDERR:\nerr\n\n\nEXIT CODE: 2');
    expect(isError).toBe(false);
  });

  it('keeps the exit code when output is truncated and says how much was cut', () => {
    const long = 'x'.repeat(1000);
    const { text, structured } = formatExecResult(outcome({ stdout: long, stdoutBytes: 5_000_000, stdoutTruncated: true, exitCode: 7 }), 'text', 100);
    expect(text.endsWith('EXIT CODE: 7')).toBe(true);
    expect(text).toContain('[stdout truncated: showing the first 100 characters of 5,000,000 bytes.');
    expect(structured.stdout).toHaveLength(100);
    expect(structured.stdout_truncated).toBe(true);
    expect(structured.exit_code).toBe(7);
  });

  it('produces valid JSON that matches the output schema, whatever the output contains', () => {
    const nasty = '"}\n{\u0000\u001b[31m\ud83d\ude00 \\ </script>';
    const formatted = formatExecResult(outcome({ stdout: nasty.repeat(50), stderr: nasty, stdoutBytes: 99, stderrBytes: 9 }), 'json', 120);
    const parsed: unknown = JSON.parse(formatted.text);
    expect(parsed).toEqual(formatted.structured);
    expect(execStructuredOutput.safeParse(parsed).success).toBe(true);
    expect(formatted.structured.stdout_truncated).toBe(true);
  });

  it('reports a timeout as an error that still shows the output so far', () => {
    const { text, isError, structured } = formatExecResult(outcome({ stdout: 'partial', exitCode: null, timedOut: true, timeoutMs: 5000 }), 'text', 100);
    expect(isError).toBe(true);
    expect(text).toContain('partial');
    expect(text).toContain(
      'TIMED OUT: the command was still running after 5 s and was stopped (its process group and every process it started were sent TERM, then KILL)',
    );
    expect(text).not.toContain('MAY STILL RUN');
    expect(structured).not.toHaveProperty('processes_may_still_run');
    expect(text).toContain('EXIT CODE: none');
    expect(structured.timed_out).toBe(true);
  });

  it('says so when a stopped command could not be confirmed to have ended', () => {
    const { text } = formatExecResult(outcome({ exitCode: null, timedOut: true, stopConfirmed: false, timeoutMs: 2000 }), 'text', 100);
    expect(text).toContain('could not be confirmed to have ended: check the host');
  });

  it('names the processes that may still run after a stop, in text and in valid JSON', () => {
    const left = ['4242 (sleep)', '4243 (my "daemon"\\)'];
    const stopped = outcome({ exitCode: null, timedOut: true, stopConfirmed: false, processesLeft: left, stdout: 'x', timeoutMs: 5000 });
    const text = formatExecResult(stopped, 'text', 100).text;
    expect(text).toContain('SOME PROCESSES MAY STILL RUN on the host: 4242 (sleep), 4243 (my "daemon"\\).');
    expect(text).toContain('EXIT CODE: none');
    const json = formatExecResult(stopped, 'json', 100);
    expect(execStructuredOutput.parse(JSON.parse(json.text))).toMatchObject({ processes_may_still_run: left, timed_out: true });
  });

  it('treats a non-zero exit as a normal result', () => {
    expect(formatExecResult(outcome({ exitCode: 1 }), 'text', 100).isError).toBe(false);
  });

  it('names the signal when the command was killed by one', () => {
    expect(formatExecResult(outcome({ exitCode: null, signal: 'KILL' }), 'text', 100).text).toContain('EXIT CODE: none (terminated by signal KILL)');
  });
});

describe('shareBudget', () => {
  it('gives each stream what it needs when both fit', () => {
    expect(shareBudget(10, 20, 100)).toEqual([10, 20]);
  });
  it('never squeezes out a short stderr', () => {
    expect(shareBudget(1000, 10, 100)).toEqual([90, 10]);
    expect(shareBudget(10, 1000, 100)).toEqual([10, 90]);
  });
  it('splits evenly when both streams are long', () => {
    expect(shareBudget(1000, 1000, 101)).toEqual([50, 51]);
  });
});

describe('cutAt', () => {
  it('does not split a surrogate pair', () => {
    const text = `ab\ud83d\ude00cd`;
    expect(cutAt(text, 3)).toBe('ab');
    expect(cutAt(text, 4)).toBe(`ab\ud83d\ude00`);
  });
});
