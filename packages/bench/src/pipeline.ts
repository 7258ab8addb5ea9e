import { readFile } from "node:fs/promises";
import path from "node:path";
import { getBatch } from "@garbage/db";
import { sql } from "drizzle-orm";
import { DEFAULT_BATCH_SIZE } from "../../../apps/worker/src/config.js";
import { scrapeMetric } from "../../../apps/worker/test/processes.js";
import { photoSet } from "./images.js";
import { combinations, variantLabel } from "./options.js";
import type { Measurement, ModelChoice, SuiteContext } from "./report.js";
import { withPeakRss } from "./rss.js";
import type { Services } from "./services.js";
import { sleep } from "./stats.js";

interface Upload {
  name: string;
  data: Buffer;
}

interface Layout {
  workers: number;
  threads: number;
  batch: number;
  /** The API's CHUNK_SIZE; undefined: its default. */
  chunk?: number;
}

/**
 * The whole service under load: the images in ONE multipart POST to the real API process, N worker processes
 * with the model, Postgres. images/s from the first upload byte to the last result row, with 1 worker using
 * every thread and with 2 workers splitting them; the ratio to the cli suite's number for the same model.
 * With sweep options, once per combination of worker BATCH_SIZE, CHUNK_SIZE and worker count.
 */
export async function pipelineSuite(ctx: SuiteContext): Promise<Measurement[]> {
  const set = await photoSet(ctx.generated, ctx.log);
  const count = Math.min(set.files.length, ctx.pipelineImages ?? set.files.length);
  // The folder prefix lets the summary check each label against the TrashNet class folder.
  const payload: Upload[] = await Promise.all(
    set.files.slice(0, count).map(async (f, i) => ({
      name: `${set.folders?.[i] ?? "generated"}-${path.basename(f)}`,
      data: await readFile(f),
    })),
  );
  const services = await ctx.services();
  const cli = ctx.results.find((m) => m.suite === "cli" && m.model === ctx.model.label)?.imagesPerSecond;
  const out: Measurement[] = [];
  const variants = combinations({ batch: ctx.sweep.workerBatch, chunk: ctx.sweep.chunkSize });
  for (const v of variants) {
    const settings = variantLabel(v, { batch: "batch", chunk: "chunk" });
    for (const workers of ctx.sweep.pipelineWorkers ?? [1, 2]) {
      const layout: Layout = {
        workers,
        threads: Math.max(1, Math.floor(ctx.threads / workers)),
        batch: v.batch ?? DEFAULT_BATCH_SIZE,
        ...(v.chunk !== undefined ? { chunk: v.chunk } : {}),
      };
      const shape = `${workers} worker${workers > 1 ? "s" : ""} x ${layout.threads} threads`;
      ctx.log(`  pipeline ${ctx.model.label}: ${count} images, ${shape}${settings ? `, ${settings}` : ""}`);
      const { result: m, peakRssMiB } = await withPeakRss(() =>
        runPipeline(services, ctx.model, payload, layout),
      ).catch(async (err) => {
        await services.stopAll("SIGKILL");
        throw err;
      });
      m.peakRssMiB = peakRssMiB;
      m.case = `${shape}, ${settings ? `${settings}, ` : ""}${count} ${set.name}`;
      if (cli !== undefined && m.imagesPerSecond !== undefined && m.extra)
        m.extra.ratioToCli = m.imagesPerSecond / cli;
      if (!set.folders && m.extra) delete m.extra.accuracy;
      out.push(m);
    }
  }
  return out;
}

async function runPipeline(
  services: Services,
  model: ModelChoice,
  payload: readonly Upload[],
  layout: Layout,
): Promise<Measurement> {
  const env = services.env("bench-pipeline");
  // The API only stores and enqueues here; it must not spend memory and CPU on a model of its own.
  const api = await services.startApi({
    ...env,
    REQUIRE_MODEL: "false",
    MODEL_PATH: path.join(services.storeDir, "no-model.onnx"),
    ...(layout.chunk !== undefined ? { CHUNK_SIZE: String(layout.chunk) } : {}),
  });
  const started = await services.startWorkers(layout.workers, {
    ...env,
    MODEL_PATH: model.path,
    WORKER_THREADS: String(layout.threads),
    BATCH_SIZE: String(layout.batch),
  });

  const form = new FormData();
  form.append("site", `bench-${env.QUEUE_NAME}`);
  for (const f of payload) form.append("images", new Blob([f.data], { type: "image/jpeg" }), f.name);
  const t0 = Date.now();
  const res = await fetch(`http://127.0.0.1:${api.port}/v1/batches`, { method: "POST", body: form });
  const accepted = Date.now();
  if (res.status !== 202) throw new Error(`upload answered ${res.status}: ${await res.text()}`);
  const { id: batchId } = (await res.json()) as { id: string };

  const { db } = services.db;
  for (;;) {
    const batch = await getBatch(db, batchId);
    if (batch?.status.startsWith("completed")) break;
    if (started.every((w) => w.child.exitCode !== null || w.child.signalCode !== null))
      throw new Error(`every worker exited before the batch completed:\n${started.flatMap((w) => w.stray)}`);
    if (Date.now() - t0 > 15 * 60_000) throw new Error("batch did not complete within 15 minutes");
    await sleep(100);
  }
  const summary = await db.execute<{
    n: string;
    failed: string;
    last: Date;
    first: Date;
    p50: number;
    p95: number;
    p99: number;
    max: number;
    right: string;
  }>(sql`
    select count(*) as n, count(*) filter (where r.status = 'failed') as failed,
      max(r.created_at) as last, min(r.created_at) as first,
      percentile_cont(0.5) within group (order by r.end_to_end_ms) as p50,
      percentile_cont(0.95) within group (order by r.end_to_end_ms) as p95,
      percentile_cont(0.99) within group (order by r.end_to_end_ms) as p99,
      max(r.end_to_end_ms) as max,
      count(*) filter (where i.filename like r.label || '-%') as right
    from results r join images i on i.id = r.image_id where r.batch_id = ${batchId}`);
  const s = summary.rows[0];
  if (!s) throw new Error("no results");
  const n = Number(s.n);
  const seconds = (new Date(s.last).getTime() - t0) / 1000;

  const batches = await Promise.all(
    started.map(async (w) => {
      const port = w.ready.metricsPort as number;
      const runs = (await scrapeMetric(port, "garbage_worker_model_batch_size_count")) ?? 0;
      const images = (await scrapeMetric(port, "garbage_worker_model_batch_size_sum")) ?? 0;
      return { runs, images };
    }),
  );
  const rss = await services.stopAll();
  const runs = batches.reduce((a, b) => a + b.runs, 0);
  return {
    suite: "pipeline",
    case: "",
    model: model.label,
    imagesPerSecond: n / seconds,
    latencyMs: { p50: s.p50, p95: s.p95, p99: s.p99, max: s.max, n },
    latencyUnit: "image, upload to row",
    childPeakRssMiB: rss.sumMiB,
    extra: {
      failed: Number(s.failed),
      accuracy: Number(s.right) / n,
      acceptedSeconds: (accepted - t0) / 1000,
      firstResultSeconds: (new Date(s.first).getTime() - t0) / 1000,
      meanBatch: batches.reduce((a, b) => a + b.images, 0) / Math.max(1, runs),
      maxProcessMiB: rss.maxPerProcessMiB,
    },
  };
}
