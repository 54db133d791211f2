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
 * the machine was doing, instead of each getting its own stretch of a noisy run. Each round runs
 * them in a new order (shuffled, from a fixed seed, so runs are alike), so that work a call leaves
 * behind it (an audit batch sent after the answer) is not always paid by the same neighbour.
 * `seed` varies the orders between calls.
 */
export async function timeInterleaved<K extends string>(
  count: number,
  actions: Record<K, () => Promise<unknown>>,
  seed = 0x6d7265,
): Promise<Record<K, number[]>> {
  const keys = Object.keys(actions) as K[];
  const samples = Object.fromEntries(keys.map((key) => [key, [] as number[]])) as Record<K, number[]>;
  const random = seededRandom(seed);
  for (let index = 0; index < count; index += 1) {
    for (const key of shuffled(keys, random)) {
      const started = performance.now();
      await actions[key]();
      samples[key].push(performance.now() - started);
    }
  }
  return samples;
}

/** mulberry32: a small PRNG, enough to vary an order reproducibly. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

/** A Fisher–Yates shuffle of a copy of `items`. */
function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const copy = [...items];
  for (let index = copy.length - 1; index > 0; index -= 1) {
    const other = Math.floor(random() * (index + 1));
    [copy[index], copy[other]] = [copy[other] as T, copy[index] as T];
  }
  return copy;
}

export function row(label: string, summary: Summary): string {
  return `${label.padEnd(72)} median ${summary.median.toFixed(2).padStart(8)} ms   p99 ${summary.p99.toFixed(2).padStart(8)} ms   (n=${summary.count})`;
}
