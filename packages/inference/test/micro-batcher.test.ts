import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { MicroBatcher } from "../src/thread/micro-batcher.js";

/** A batcher whose run records every batch it was given and doubles the numbers. */
function recording(opts: { maxSize: number; maxWaitMs: number; maxInFlight?: number; delayMs?: number }) {
  const batches: number[][] = [];
  const batcher = new MicroBatcher<number, number>({
    ...opts,
    run: async (items) => {
      batches.push(items);
      if (opts.delayMs) await sleep(opts.delayMs);
      return items.map((x) => x * 2);
    },
  });
  return { batcher, batches };
}

describe("MicroBatcher", () => {
  it("dispatches a full batch at once, long before the wait time", async () => {
    const { batcher, batches } = recording({ maxSize: 4, maxWaitMs: 10_000 });
    const started = performance.now();
    const out = await Promise.all([1, 2, 3, 4].map((x) => batcher.add(x)));
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(out).toEqual([2, 4, 6, 8]);
    expect(batches).toEqual([[1, 2, 3, 4]]);
  });

  it("splits more items than maxSize into several batches, in arrival order", async () => {
    const { batcher, batches } = recording({ maxSize: 3, maxWaitMs: 20 });
    const out = await Promise.all([1, 2, 3, 4, 5, 6, 7].map((x) => batcher.add(x)));
    expect(out).toEqual([2, 4, 6, 8, 10, 12, 14]);
    expect(batches).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
  });

  it("dispatches a partial batch once the oldest item has waited maxWaitMs", async () => {
    const { batcher, batches } = recording({ maxSize: 10, maxWaitMs: 60 });
    const started = performance.now();
    const a = batcher.add(1);
    await sleep(20);
    const b = batcher.add(2);
    expect(await Promise.all([a, b])).toEqual([2, 4]);
    const waited = performance.now() - started;
    // The deadline is the first item's, not reset by the second.
    expect(waited).toBeGreaterThanOrEqual(55);
    expect(waited).toBeLessThan(1_000);
    expect(batches).toEqual([[1, 2]]);
  });

  it("mixes items of several producers into one batch and hands each its own outputs", async () => {
    const { batcher, batches } = recording({ maxSize: 8, maxWaitMs: 40 });
    // Three "jobs" arriving at different moments within the wait window.
    const producer = async (base: number, count: number, delay: number) => {
      await sleep(delay);
      return Promise.all(Array.from({ length: count }, (_, i) => batcher.add(base + i)));
    };
    const [p1, p2, p3] = await Promise.all([producer(100, 3, 0), producer(200, 2, 5), producer(300, 2, 10)]);
    expect(p1).toEqual([200, 202, 204]);
    expect(p2).toEqual([400, 402]);
    expect(p3).toEqual([600, 602]);
    expect(batches).toEqual([[100, 101, 102, 200, 201, 300, 301]]);
  });

  it("rejects every item of a failed batch and keeps serving later batches", async () => {
    let calls = 0;
    const batcher = new MicroBatcher<number, number>({
      maxSize: 2,
      maxWaitMs: 5,
      run: async (items) => {
        calls += 1;
        if (calls === 1) throw new Error("database is down");
        return items;
      },
    });
    const first = await Promise.allSettled([batcher.add(1), batcher.add(2)]);
    expect(first.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect((first[0] as PromiseRejectedResult).reason).toBeInstanceOf(Error);
    expect(((first[0] as PromiseRejectedResult).reason as Error).message).toBe("database is down");
    expect(await Promise.all([batcher.add(3), batcher.add(4)])).toEqual([3, 4]);
  });

  it("turns a synchronous throw or a wrong number of outputs into rejections", async () => {
    const sync = new MicroBatcher<number, number>({
      maxSize: 1,
      maxWaitMs: 0,
      run: () => {
        throw new Error("boom");
      },
    });
    await expect(sync.add(1)).rejects.toThrow("boom");
    const short = new MicroBatcher<number, number>({ maxSize: 2, maxWaitMs: 50, run: async () => [1] });
    const settled = await Promise.allSettled([short.add(1), short.add(2)]);
    for (const r of settled) {
      expect(r.status).toBe("rejected");
      expect(String((r as PromiseRejectedResult).reason)).toMatch(/1 outputs for 2 items/);
    }
  });

  it("never runs more than maxInFlight batches at once and gathers the next batch meanwhile", async () => {
    let running = 0;
    let peak = 0;
    const sizes: number[] = [];
    const batcher = new MicroBatcher<number, number>({
      maxSize: 4,
      maxWaitMs: 1,
      maxInFlight: 2,
      run: async (items) => {
        running += 1;
        peak = Math.max(peak, running);
        sizes.push(items.length);
        await sleep(30);
        running -= 1;
        return items;
      },
    });
    const all: Promise<number>[] = [];
    for (let i = 0; i < 20; i++) {
      all.push(batcher.add(i));
      await sleep(2);
    }
    expect(await Promise.all(all)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(peak).toBe(2);
    // While both slots were busy, items accumulated into full batches instead of 1-item runs.
    expect(sizes.filter((s) => s === 4).length).toBeGreaterThanOrEqual(2);
  });

  it("close() flushes pending items without waiting for the timer and refuses new ones", async () => {
    const { batcher, batches } = recording({ maxSize: 10, maxWaitMs: 60_000, delayMs: 10 });
    const a = batcher.add(1);
    const started = performance.now();
    await batcher.close();
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(await a).toBe(2);
    expect(batches).toEqual([[1]]);
    await expect(batcher.add(2)).rejects.toThrow(/closed/);
  });
});
