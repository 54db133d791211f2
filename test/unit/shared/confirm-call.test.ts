/**
 * The own-confirmation capability a tool hands its executor on 2026-07-28 (shared/confirm-call.ts
 * confirmationFor): an answer counts only with the state of the very question asked now; without
 * one the question is kept, and the tool returns it as input_required only when the executor ended
 * the call on it (approval_pending), never after it went past it (ran, or refused for another reason).
 */
import type { McpServer, ServerContext } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import { confirmationFor, type ConfirmQuestion } from '../../../shared/confirm-call.ts';

const question: ConfirmQuestion = {
  host: 'prod',
  guest: null,
  command: 'touch /tmp/x',
  commandClass: 'mutating',
  rule: 'rule 0',
  timeoutMs: 30_000,
  record: 'a'.repeat(32),
};
const yes = { confirm: { action: 'accept', content: { confirm: true } } };
const server = { server: { getClientCapabilities: () => undefined } } as unknown as McpServer;

/** A 2026-07-28 request's context: the envelope declares form elicitation; the retry fields as given. */
function request(
  retry: { inputResponses?: Record<string, unknown>; requestState?: string } = {},
  capabilities: unknown = { elicitation: { form: {} } },
): ServerContext {
  return {
    mcpReq: {
      envelope: { 'io.modelcontextprotocol/clientCapabilities': capabilities },
      inputResponses: retry.inputResponses,
      requestState: () => retry.requestState,
    },
  } as unknown as ServerContext;
}

async function ask(ctx: ServerContext, asked: ConfirmQuestion = question): Promise<{ answer: string; state: unknown; pending: unknown }> {
  const { confirm, inputRequired } = confirmationFor(server, ctx, 'modern');
  if (!confirm) throw new Error('the client can be asked');
  const answer = await confirm(asked, AbortSignal.timeout(1000));
  const pending = inputRequired({ ok: false, error: { code: 'approval_pending' } });
  return { answer, state: (pending as { requestState?: unknown } | null)?.requestState, pending };
}

describe('confirmationFor, 2026-07-28', () => {
  it('gives no capability to a client that declared no form elicitation', () => {
    expect(confirmationFor(server, request({}, {}), 'modern').confirm).toBeUndefined();
    expect(confirmationFor(server, request({}, { elicitation: { url: {} } }), 'modern').confirm).toBeUndefined();
  });

  it('asks when the request carries no answer, and returns the question with its state only on approval_pending', async () => {
    const { confirm, inputRequired } = confirmationFor(server, request(), 'modern');
    expect(inputRequired({ ok: false, error: { code: 'approval_pending' } })).toBeNull();
    expect(await confirm?.(question, AbortSignal.timeout(1000))).toBe('asked');
    const result = inputRequired({ ok: false, error: { code: 'approval_pending' } });
    expect(result).toMatchObject({ resultType: 'input_required', requestState: `record:${'a'.repeat(32)}` });
    expect(JSON.stringify(result)).toContain('touch /tmp/x');
    // The executor went past the question (ran, or refused for another reason): no question.
    expect(inputRequired({ ok: true })).toBeNull();
    expect(inputRequired({ ok: false, error: { code: 'approval_refused' } })).toBeNull();
  });

  it("takes the answer that comes back with this question's state: yes, no, a dismissal, and a malformed yes as a no", async () => {
    const state = `record:${'a'.repeat(32)}`;
    expect((await ask(request({ inputResponses: yes, requestState: state }))).answer).toBe('accept');
    expect((await ask(request({ inputResponses: { confirm: { action: 'decline' } }, requestState: state }))).answer).toBe('decline');
    expect((await ask(request({ inputResponses: { confirm: { action: 'cancel' } }, requestState: state }))).answer).toBe('cancel');
    expect((await ask(request({ inputResponses: { confirm: { action: 'accept', content: { confirm: 'yes' } } }, requestState: state }))).answer).toBe(
      'decline',
    );
  });

  it("asks again for an answer without state, with another question's state, or with a made-up one", async () => {
    expect((await ask(request({ inputResponses: yes }))).answer).toBe('asked');
    expect((await ask(request({ inputResponses: yes, requestState: `record:${'b'.repeat(32)}` }))).answer).toBe('asked');
    expect((await ask(request({ inputResponses: yes, requestState: 'anything' }))).answer).toBe('asked');
    // Without a record (stdio), the state is the question's own MAC: another command's does not fit.
    const local = { ...question, record: undefined };
    const first = await ask(request(), local);
    expect(first.state).toMatch(/^mac:/);
    expect((await ask(request({ inputResponses: yes, requestState: String(first.state) }), { ...local, command: 'touch /tmp/y' })).answer).toBe('asked');
    expect((await ask(request({ inputResponses: yes, requestState: String(first.state) }), local)).answer).toBe('accept');
    // Answered once: the same state again is a replay.
    expect((await ask(request({ inputResponses: yes, requestState: String(first.state) }), local)).answer).toBe('asked');
  });
});
