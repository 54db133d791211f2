import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ABORTED, unlessAborted } from '../../../shared/unless-aborted.ts';

describe('waiting unless aborted', () => {
  it('gives the value, and leaves no listener on the signal behind', async () => {
    const controller = new AbortController();
    for (let index = 0; index < 1000; index += 1) {
      expect(await unlessAborted(Promise.resolve(index), controller.signal)).toBe(index);
    }
    // Racing against a promise that settles on abort would have left 1000 reactions behind.
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('gives ABORTED when the signal fires first, or has already fired', async () => {
    const controller = new AbortController();
    const waiting = unlessAborted(new Promise<never>(() => undefined), controller.signal);
    controller.abort();
    expect(await waiting).toBe(ABORTED);
    expect(await unlessAborted(Promise.resolve(1), controller.signal)).toBe(ABORTED);
  });

  it('passes a rejection on and removes its listener', async () => {
    const controller = new AbortController();
    await expect(unlessAborted(Promise.reject(new Error('broke')), controller.signal)).rejects.toThrow('broke');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});
