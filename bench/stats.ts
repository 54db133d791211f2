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

export function row(label: string, summary: Summary): string {
  return `${label.padEnd(72)} median ${summary.median.toFixed(2).padStart(8)} ms   p99 ${summary.p99.toFixed(2).padStart(8)} ms   (n=${summary.count})`;
}
