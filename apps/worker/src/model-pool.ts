import type { ModelVersionRow } from "@garbage/db";
import type { BatchClassification, ModelInfo } from "@garbage/inference";

/** A version a worker can serve: a registry row, or the shipped default (no row). */
export interface ServedVersion {
  /** Pool key: DEFAULT_KEY or the registry row's id. */
  key: string;
  /** What results record: the float manifest's `name@version` (the default: its own manifest's). */
  modelVersion: string;
  row?: ModelVersionRow;
}

export const DEFAULT_KEY = "default";

/** What the pool needs of a loaded model: InferenceThread's shape. */
export interface ModelThread {
  readonly model: ModelInfo;
  readonly alive: boolean;
  /** Threads started again after the previous one died. */
  readonly restarts: number;
  classify(images: readonly Uint8Array[]): Promise<BatchClassification>;
  close(): Promise<void>;
}

/** What the pool needs of a version's micro-batcher: closing it flushes its queue and waits for its runs. */
export interface Closable {
  close(): Promise<void>;
}

export interface PooledModel<B extends Closable> {
  version: ServedVersion;
  thread: ModelThread;
  batcher: B;
  /** Direct classify calls (shadow, backfill) still running; eviction waits for them too. */
  direct: Set<Promise<unknown>>;
}

export interface ModelPoolOptions<B extends Closable> {
  maxModels: number;
  load: (version: ServedVersion) => Promise<ModelThread>;
  /** One batcher per loaded version, so a model batch never mixes versions. */
  batcher: (version: ServedVersion, thread: ModelThread) => B;
  onLoad?: (version: ServedVersion, ms: number) => void;
  onLoadFailed?: (version: ServedVersion, err: unknown) => void;
  onEvict?: (version: ServedVersion) => void;
  /** A failed load is answered from memory for this long, so a burst of jobs does not refetch a broken version. */
  failureTtlMs?: number;
}

/**
 * At most `maxModels` loaded versions (inference thread + micro-batcher each), least recently used evicted
 * first. An evicted version leaves the pool at once, so new work loads it afresh, but its thread is closed only
 * after the batches already handed to it (and direct calls) have finished: nothing in flight is lost.
 */
export class ModelPool<B extends Closable> {
  // Map order is recency order: a use moves the entry to the end, the first entry is the eviction candidate.
  private readonly entries = new Map<string, PooledModel<B>>();
  private readonly loading = new Map<string, Promise<PooledModel<B>>>();
  private readonly failures = new Map<string, { at: number; err: unknown }>();
  private readonly draining = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly opts: ModelPoolOptions<B>) {
    if (!Number.isInteger(opts.maxModels) || opts.maxModels < 1)
      throw new RangeError("maxModels must be >= 1");
  }

  /** The loaded versions, least recently used first. */
  get loaded(): PooledModel<B>[] {
    return [...this.entries.values()];
  }

  get(key: string): PooledModel<B> | undefined {
    return this.entries.get(key);
  }

  /**
   * The loaded version, loading it first when it is not. With `evict: false` (best-effort work) nothing is
   * evicted for it: undefined when it is not loaded and the pool is full. Throws when the version cannot load.
   */
  async acquire(version: ServedVersion, { evict = true } = {}): Promise<PooledModel<B> | undefined> {
    for (;;) {
      if (this.closed) throw new Error("model pool is closed");
      const hit = this.entries.get(version.key);
      if (hit) {
        this.entries.delete(version.key);
        this.entries.set(version.key, hit);
        return hit;
      }
      const inFlight = this.loading.get(version.key);
      if (inFlight) return inFlight;
      const failed = this.failures.get(version.key);
      if (failed && Date.now() - failed.at < (this.opts.failureTtlMs ?? 5_000)) throw failed.err;
      if (this.entries.size + this.loading.size < this.opts.maxModels) return this.startLoad(version);
      if (!evict) return undefined;
      const victim = this.entries.values().next().value;
      if (victim) this.evict(victim);
      // Every slot is loading: wait for one, then look again.
      else await Promise.race([...this.loading.values()].map((p) => p.catch(() => {})));
    }
  }

  /** A classify call outside the version's batcher (shadow, backfill) that eviction waits for. */
  classify(entry: PooledModel<B>, images: readonly Uint8Array[]): Promise<BatchClassification> {
    const run = entry.thread.classify(images);
    const tracked = run.catch(() => {});
    entry.direct.add(tracked);
    void tracked.finally(() => entry.direct.delete(tracked));
    return run;
  }

  /** Evicts every version and waits for their in-flight work and threads. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.loading.values());
    for (const entry of [...this.entries.values()]) this.evict(entry);
    await Promise.all(this.draining);
  }

  private startLoad(version: ServedVersion): Promise<PooledModel<B>> {
    const started = performance.now();
    const load = (async () => {
      const thread = await this.opts.load(version);
      return {
        version,
        thread,
        batcher: this.opts.batcher(version, thread),
        direct: new Set<Promise<unknown>>(),
      };
    })();
    this.loading.set(version.key, load);
    return load.then(
      (entry) => {
        this.loading.delete(version.key);
        this.failures.delete(version.key);
        this.entries.set(version.key, entry);
        this.opts.onLoad?.(version, performance.now() - started);
        // Closed while loading: close() waited for this load and evicts what it finds, but not this one yet.
        if (this.closed) this.evict(entry);
        return entry;
      },
      (err: unknown) => {
        this.loading.delete(version.key);
        this.failures.set(version.key, { at: Date.now(), err });
        this.opts.onLoadFailed?.(version, err);
        throw err;
      },
    );
  }

  private evict(entry: PooledModel<B>): void {
    if (this.entries.get(entry.version.key) !== entry) return;
    this.entries.delete(entry.version.key);
    this.opts.onEvict?.(entry.version);
    const drain = (async () => {
      await entry.batcher.close();
      await Promise.all(entry.direct);
      await entry.thread.close();
    })().finally(() => this.draining.delete(drain));
    this.draining.add(drain);
  }
}
