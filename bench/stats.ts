/** Small helpers for benchmark figures: percentiles over millisecond samples and formatting. */
export interface Summary {
  median: number;
  p99: number;
  mean: number;
  count: number;
}

export function summarize(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
  return { median: at(0.5), p99: at(0.99), mean: sorted.reduce((sum, value) => sum + value, 0) / sorted.length, count: sorted.length };
}

export async function timeSequential(count: number, action: () => Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  for (let index = 0; index < count; index += 1) {
    const started = performance.now();
    await action();
    samples.push(performance.now() - started);
  }
  return samples;
}

/**
 * Time several actions round-robin, `count` rounds: each round runs every action once, in turn. The
 * figures compared with each other (the floor, the platform, the tool calls) then share whatever
 * the machine was doing, instead of each getting its own stretch of a noisy run.
 */
export async function timeInterleaved<K extends string>(count: number, actions: Record<K, () => Promise<unknown>>): Promise<Record<K, number[]>> {
  const keys = Object.keys(actions) as K[];
  const samples = Object.fromEntries(keys.map((key) => [key, [] as number[]])) as Record<K, number[]>;
  for (let index = 0; index < count; index += 1) {
    for (const key of keys) {
      const started = performance.now();
      await actions[key]();
      samples[key].push(performance.now() - started);
    }
  }
  return samples;
}

export function row(label: string, summary: Summary): string {
  return `${label.padEnd(72)} median ${summary.median.toFixed(2).padStart(8)} ms   p99 ${summary.p99.toFixed(2).padStart(8)} ms   (n=${summary.count})`;
}
