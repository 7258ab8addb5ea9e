/** Command-line parsing shared by the bench's entry points, apart from them so it can be tested. */

export class UsageError extends Error {}

export function positive(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`--${name} must be a positive number, got ${value}`);
  return n;
}

/**
 * A comma list of integers >= min (`1,2,4,8`), in the order given; undefined when the option is absent.
 * Duplicates are refused: each value is one measured case, and a case measured twice reads as a typo.
 */
export function intList(value: string | undefined, name: string, min: number): number[] | undefined {
  if (value === undefined) return undefined;
  const items = value.split(",").map((s) => s.trim());
  const out = items.map((s) => {
    const n = Number(s);
    if (s === "" || !Number.isInteger(n) || n < min)
      throw new UsageError(
        `--${name} takes a comma list of integers >= ${min}, got ${JSON.stringify(value)}`,
      );
    return n;
  });
  if (new Set(out).size !== out.length) throw new UsageError(`--${name} names a value twice: ${value}`);
  return out;
}

/** Sweeps over the service settings; an absent dimension is not swept (the service's default is measured). */
export interface Sweep {
  /** CLASSIFY_MAX_BATCH of the API in the classify suite. */
  classifyBatch?: number[];
  /** CLASSIFY_MAX_WAIT_MS of the API in the classify suite. */
  classifyWait?: number[];
  /** CLASSIFY_THREADS of the API in the classify suite (default: --threads). */
  classifyThreads?: number[];
  /** BATCH_SIZE of the workers in the pipeline suite (default: the worker's). */
  workerBatch?: number[];
  /** CHUNK_SIZE of the API (images per queue job) in the pipeline suite. */
  chunkSize?: number[];
  /** Worker processes in the pipeline suite, the threads split between them (default 1 and 2). */
  pipelineWorkers?: number[];
}

/** One combination of a sweep: the values of the dimensions that were given. */
export type Variant<K extends string> = Partial<Record<K, number>>;

/**
 * Every combination of the given dimensions, the first varying slowest; one empty variant when none is given.
 * Order matters on a noisy machine: neighbours in the list are measured close together in time.
 */
export function combinations<K extends string>(dims: Record<K, number[] | undefined>): Variant<K>[] {
  let out: Variant<K>[] = [{}];
  for (const [key, values] of Object.entries(dims) as [K, number[] | undefined][]) {
    if (!values) continue;
    out = out.flatMap((v) => values.map((x) => ({ ...v, [key]: x })));
  }
  return out;
}

/** `batch 8 wait 2` for a variant, with the names given per key; "" for the empty one. */
export function variantLabel<K extends string>(v: Variant<K>, names: Record<K, string>): string {
  return (Object.keys(names) as K[])
    .filter((k) => v[k] !== undefined)
    .map((k) => `${names[k]} ${v[k]}`)
    .join(" ");
}

/** A Server-Timing header's `name;dur=ms` entries (others and malformed ones ignored). */
export function parseServerTiming(header: string | null): Record<string, number> {
  const out: Record<string, number> = {};
  for (const entry of (header ?? "").split(",")) {
    const [name, ...params] = entry.split(";").map((s) => s.trim());
    if (!name) continue;
    for (const p of params) {
      const m = /^dur=(\d+(?:\.\d+)?)$/.exec(p);
      if (m) out[name] = Number(m[1]);
    }
  }
  return out;
}

/** The median of each key over the records that have it. */
export function medians(records: readonly Record<string, number>[]): Record<string, number> {
  const byKey = new Map<string, number[]>();
  for (const r of records) for (const [k, v] of Object.entries(r)) byKey.set(k, [...(byKey.get(k) ?? []), v]);
  const out: Record<string, number> = {};
  for (const [k, values] of byKey) {
    const sorted = values.sort((a, b) => a - b);
    const mid = sorted.length / 2;
    out[k] = Number.isInteger(mid)
      ? ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
      : (sorted[Math.floor(mid)] as number);
  }
  return out;
}
