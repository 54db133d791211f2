/**
 * The bench's Worker (bench/classify.ts starts it in local workerd through wrangler): classifies a
 * command `repeat` times with the Worker's own classifier (worker/shell/, imported WebAssembly).
 * Deployed Workers do not advance their clocks during synchronous work, so bench/classify.ts times
 * the request from outside; the in-Worker clock is reported only as a cross-check.
 */
import { classifyCommand } from '../worker/shell/classifier.ts';

export default {
  async fetch(request: Request): Promise<Response> {
    const body: unknown = await request.json();
    if (typeof body !== 'object' || body === null || !('command' in body) || !('repeat' in body)) return new Response('bad request', { status: 400 });
    const { command, repeat } = body;
    if (typeof command !== 'string' || typeof repeat !== 'number' || repeat < 0 || repeat > 10_000) return new Response('bad request', { status: 400 });
    let cls = '';
    const clockBefore = Date.now();
    for (let index = 0; index < repeat; index += 1) cls = (await classifyCommand(command)).class;
    return Response.json({ class: cls, clockAdvancedMs: Date.now() - clockBefore });
  },
};
