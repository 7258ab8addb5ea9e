import type { BatchClassification } from "@garbage/inference";
import { MicroBatcher } from "@garbage/inference";
import { describe, expect, it } from "vitest";
import { ModelPool, type ModelThread, type ServedVersion } from "../src/model-pool";

const version = (key: string): ServedVersion => ({ key, modelVersion: `${key}@1` });

/** A stand-in model thread whose runs finish when the test says so. */
class FakeThread implements ModelThread {
  readonly model = { name: "fake", version: "1", sha256: "", classes: ["a"] };
  alive = true;
  restarts = 0;
  closed = false;
  readonly runs: (() => void)[] = [];
  constructor(readonly key: string) {}
  classify(images: readonly Uint8Array[]): Promise<BatchClassification> {
    return new Promise((resolve) => {
      this.runs.push(() =>
        resolve({
          outcomes: images.map(() => ({ ok: false as const, error: { code: "corrupt", message: this.key } })),
          decodeMs: 0,
          inferenceMs: 0,
          modelBatchSize: 0,
        }),
      );
    });
  }
  async close() {
    this.closed = true;
  }
}

function pool(maxModels: number, fail = new Set<string>()) {
  const threads: FakeThread[] = [];
  const events: string[] = [];
  const p = new ModelPool({
    maxModels,
    load: async (v) => {
      if (fail.has(v.key)) throw new Error(`cannot load ${v.key}`);
      const t = new FakeThread(v.key);
      threads.push(t);
      return t;
    },
    batcher: (_v, thread) =>
      new MicroBatcher<number, string>({
        maxSize: 4,
        maxWaitMs: 0,
        run: async (items) => {
          const r = await thread.classify(items.map(() => new Uint8Array(1)));
          return r.outcomes.map((o) => (o.ok ? "" : o.error.message));
        },
      }),
    onLoad: (v) => events.push(`load ${v.key}`),
    onEvict: (v) => events.push(`evict ${v.key}`),
    failureTtlMs: 60_000,
  });
  return { p, threads, events };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe("ModelPool", () => {
  it("keeps at most maxModels, evicting the least recently used", async () => {
    const { p, events } = pool(2);
    await p.acquire(version("a"));
    await p.acquire(version("b"));
    await p.acquire(version("a"));
    await p.acquire(version("c"));
    expect(p.loaded.map((m) => m.version.key)).toEqual(["a", "c"]);
    expect(events).toEqual(["load a", "load b", "evict b", "load c"]);
    await p.close();
  });

  it("closes an evicted thread only after its batches and direct calls finish", async () => {
    const { p, threads } = pool(1);
    const a = await p.acquire(version("a"));
    if (!a) throw new Error("not loaded");
    const queued = a.batcher.add(1);
    const direct = p.classify(a, [new Uint8Array(1)]);
    await tick();
    await p.acquire(version("b"));
    const [ta] = threads as [FakeThread];
    expect(p.loaded.map((m) => m.version.key)).toEqual(["b"]);
    expect(ta.closed).toBe(false);
    for (const finish of ta.runs.splice(0)) finish();
    expect(await queued).toBe("a");
    await direct;
    await tick();
    expect(ta.closed).toBe(true);
    await p.close();
  });

  it("does not evict for best-effort work, and remembers a failed load for a while", async () => {
    const { p, threads } = pool(1, new Set(["broken"]));
    await p.acquire(version("a"));
    expect(await p.acquire(version("b"), { evict: false })).toBeUndefined();
    await expect(p.acquire(version("broken"))).rejects.toThrow("cannot load broken");
    await expect(p.acquire(version("broken"))).rejects.toThrow("cannot load broken");
    expect(threads).toHaveLength(1);
    await p.close();
    expect(threads.every((t) => t.closed)).toBe(true);
  });
});
