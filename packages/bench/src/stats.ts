/** Latency summary in milliseconds. */
export interface Latency {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  n: number;
}

/** Nearest-rank percentiles; undefined for no samples. */
export function percentiles(ms: readonly number[]): Latency | undefined {
  if (ms.length === 0) return undefined;
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted.at(-1) as number, n: sorted.length };
}

export interface LoopResult {
  /** Images (or requests) finished inside the measured window. */
  images: number;
  seconds: number;
  /** One entry per call of `fn`, in milliseconds. */
  latencies: number[];
  imagesPerSecond: number;
}

/**
 * Runs `fn` from `concurrency` loops at once until `budgetMs` has passed (every loop finishes at least one
 * call); `fn` returns how many images the call handled. `warmup` calls run first and are not counted.
 */
export async function pool(
  concurrency: number,
  budgetMs: number,
  fn: (slot: number) => Promise<number>,
  warmup = 1,
): Promise<LoopResult> {
  for (let i = 0; i < warmup; i++) await fn(0);
  const latencies: number[] = [];
  let images = 0;
  const start = performance.now();
  const deadline = start + budgetMs;
  const runner = async (slot: number) => {
    do {
      const t = performance.now();
      const n = await fn(slot); // not `images += await`: that reads `images` before the await
      images += n;
      latencies.push(performance.now() - t);
    } while (performance.now() < deadline);
  };
  await Promise.all(Array.from({ length: concurrency }, (_, slot) => runner(slot)));
  const seconds = (performance.now() - start) / 1000;
  return { images, seconds, latencies, imagesPerSecond: images / seconds };
}

/** Cycles through a list: next() returns the following item, forever. */
export function cycle<T>(items: readonly T[]): () => T {
  if (items.length === 0) throw new Error("cycle() needs at least one item");
  let i = 0;
  return () => items[i++ % items.length] as T;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
