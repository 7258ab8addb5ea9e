import { readFile } from "node:fs/promises";
import { photoSet } from "./images.js";
import { combinations, medians, parseServerTiming, variantLabel } from "./options.js";
import type { Measurement, SuiteContext } from "./report.js";
import { statusKiB, withPeakRss } from "./rss.js";
import { percentiles, pool, sleep } from "./stats.js";

export const CONCURRENT_CLIENTS = 20;
export const HEALTH_EVERY_MS = 20;

interface Tally {
  okMs: number[];
  /** Per 200 answer: its Server-Timing phases and `http`, the client's time outside the handler. */
  phases: Record<string, number>[];
  /** Per 200 answer: the images in its session.run (X-Model-Batch-Size). */
  batchSizes: number[];
  /** Non-200 answers other than 503, and failed connections. */
  errors: number;
  /** 503 overloaded (the classify queue was full). */
  overloaded: number;
  firstError?: string;
}

const SETTINGS = { batch: "batch", wait: "wait", threads: "threads" } as const;

/**
 * POST /v1/classify against the real API process (its model in its inference thread): 1 client, then 20
 * concurrent ones while a separate client polls /healthz every 20 ms, which shows whether classification
 * stalls the event loop. The load generator shares this machine's cores with the API. With sweep options,
 * once per combination of CLASSIFY_MAX_BATCH, CLASSIFY_MAX_WAIT_MS and CLASSIFY_THREADS, a fresh API each.
 */
export async function classifySuite(ctx: SuiteContext): Promise<Measurement[]> {
  const set = await photoSet(ctx.generated, ctx.log);
  const image = await readFile(set.files[0] as string);
  const variants = combinations({
    batch: ctx.sweep.classifyBatch,
    wait: ctx.sweep.classifyWait,
    threads: ctx.sweep.classifyThreads,
  });
  const out: Measurement[] = [];
  for (const v of variants) out.push(...(await classifyOnce(ctx, image, v)));
  return out;
}

async function classifyOnce(
  ctx: SuiteContext,
  image: Buffer,
  v: { batch?: number; wait?: number; threads?: number },
): Promise<Measurement[]> {
  const services = await ctx.services();
  const env = services.env("bench-classify");
  const label = variantLabel(v, SETTINGS);
  const suffix = label ? `, ${label}` : "";
  const threads = v.threads ?? ctx.threads;
  try {
    ctx.log(`  classify ${ctx.model.label}: starting the API (CLASSIFY_THREADS=${threads}${suffix})`);
    const api = await services.startApi({
      ...env,
      MODEL_PATH: ctx.model.path,
      CLASSIFY_THREADS: String(threads),
      ...(v.batch !== undefined ? { CLASSIFY_MAX_BATCH: String(v.batch) } : {}),
      ...(v.wait !== undefined ? { CLASSIFY_MAX_WAIT_MS: String(v.wait) } : {}),
    });
    if (!api.proc.logs.some((l) => l.msg === "model loaded")) {
      const why = api.proc.logs.filter((l) => l.level === "error").map((l) => JSON.stringify(l));
      throw new Error(`the API did not load ${ctx.model.path}:\n${why.join("\n")}`);
    }
    const base = `http://127.0.0.1:${api.port}`;
    const post = async (tally: Tally) => {
      const t = performance.now();
      try {
        const res = await fetch(`${base}/v1/classify`, {
          method: "POST",
          headers: { "content-type": "image/jpeg" },
          body: image,
        });
        const body = await res.text();
        const ms = performance.now() - t;
        if (res.status === 200) {
          tally.okMs.push(ms);
          const phases = parseServerTiming(res.headers.get("server-timing"));
          if (phases.app !== undefined) phases.http = Math.max(0, ms - phases.app);
          tally.phases.push(phases);
          const batch = Number(res.headers.get("x-model-batch-size"));
          if (batch > 0) tally.batchSizes.push(batch);
        } else if (res.status === 503 && body.includes("overloaded")) tally.overloaded++;
        else {
          tally.errors++;
          tally.firstError ??= `${res.status} ${body.slice(0, 200)}`;
        }
        return res.status === 200 ? 1 : 0;
      } catch (err) {
        tally.errors++;
        tally.firstError ??= String(err);
        return 0;
      }
    };
    const apiPeak = () => (statusKiB(api.proc.pid, "VmHWM") ?? 0) / 1024;
    const out: Measurement[] = [];
    const measure = async (clients: number): Promise<void> => {
      const tally: Tally = { okMs: [], phases: [], batchSizes: [], errors: 0, overloaded: 0 };
      const health = clients > 1 ? pollHealth(base) : undefined;
      const { result, peakRssMiB } = await withPeakRss(() =>
        pool(clients, ctx.budgetMs, () => post(tally), clients === 1 ? 3 : 0),
      );
      if (tally.firstError) ctx.log(`  classify: first error answer: ${tally.firstError}`);
      // Median ms per phase (they need not add up to the median total); the mean session.run batch.
      const phases = Object.entries(medians(tally.phases)).map(([k, ms]) => [`${k}Ms`, ms] as const);
      const meanBatch = tally.batchSizes.reduce((a, b) => a + b, 0) / Math.max(1, tally.batchSizes.length);
      out.push({
        suite: "classify",
        case: `/v1/classify ${clients} client${clients > 1 ? "s" : ""}${suffix}`,
        model: ctx.model.label,
        imagesPerSecond: tally.okMs.length / result.seconds,
        latencyMs: percentiles(tally.okMs),
        latencyUnit: "request",
        peakRssMiB,
        childPeakRssMiB: apiPeak(),
        extra: {
          requests: result.latencies.length,
          errors: tally.errors,
          overloaded503: tally.overloaded,
          ...(tally.batchSizes.length ? { meanBatch } : {}),
          ...(clients === 1 ? Object.fromEntries(phases) : {}),
        },
      });
      if (!health) return;
      const polls = await health.stop();
      out.push({
        suite: "classify",
        case: `/healthz every ${HEALTH_EVERY_MS} ms during ${clients} clients${suffix}`,
        model: ctx.model.label,
        latencyMs: percentiles(polls.ms),
        latencyUnit: "poll",
        extra: {
          polls: polls.ms.length + polls.errors,
          errors: polls.errors,
          maxMs: percentiles(polls.ms)?.max ?? 0,
        },
      });
    };
    ctx.log(`  classify ${ctx.model.label}: 1 client`);
    await measure(1);
    ctx.log(`  classify ${ctx.model.label}: ${CONCURRENT_CLIENTS} clients + /healthz poller`);
    await measure(CONCURRENT_CLIENTS);
    await services.stopAll();
    return out;
  } catch (err) {
    await services.stopAll("SIGKILL");
    throw err;
  }
}

/** Polls GET /healthz every HEALTH_EVERY_MS (or right after a slower answer) until stop(). */
function pollHealth(base: string): { stop(): Promise<{ ms: number[]; errors: number }> } {
  const ms: number[] = [];
  let errors = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const t = performance.now();
      try {
        const res = await fetch(`${base}/healthz`);
        await res.arrayBuffer();
        if (res.status === 200) ms.push(performance.now() - t);
        else errors++;
      } catch {
        errors++;
      }
      await sleep(Math.max(0, HEALTH_EVERY_MS - (performance.now() - t)));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { ms, errors };
    },
  };
}
