/**
 * npm run bench:e2e [-- --workers 2 --threads 1 --images <dir> --no-cli]
 *
 * The whole service under load: all TrashNet val images in ONE multipart POST to the real API process
 * (apps/api/src/index.ts on a random port), N worker processes with the real model, Postgres. Reports images/s
 * from the first upload byte to the last result row, and the CLI on the same images for comparison.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { createDb, ensureDatabase, getBatch, migrate } from "@garbage/db";
import { listImageFolder } from "@garbage/inference";
import { createQueue, createRedis } from "@garbage/queue";
import { sql } from "drizzle-orm";
import { REAL_MODEL, REPO_ROOT, TRASHNET_VAL } from "../test/helpers";
import {
  type ServiceProcess,
  scrapeMetric,
  startService,
  startWorkerProcess,
  stopProcess,
} from "../test/processes";

const { values } = parseArgs({
  options: {
    workers: { type: "string", default: "2" },
    threads: { type: "string", default: "1" },
    images: { type: "string", default: TRASHNET_VAL },
    "batch-size": { type: "string", default: "16" },
    "no-cli": { type: "boolean", default: false },
  },
});
const workers = Number(values.workers);
const threads = Number(values.threads);
const imagesDir = path.resolve(values.images);
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/garbage_bench";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

if (!existsSync(REAL_MODEL)) {
  console.error(`bench:e2e needs the real model at ${REAL_MODEL} (npm run train)`);
  process.exit(2);
}
if (!existsSync(imagesDir)) {
  console.error(`no images at ${imagesDir} (expected <dir>/<class>/<image>)`);
  process.exit(2);
}

const files = await listImageFolder(imagesDir, []);
const payload = await Promise.all(
  files.map(async (f) => ({ name: `${f.folder}-${path.basename(f.file)}`, data: await readFile(f.file) })),
);
const bytes = payload.reduce((n, f) => n + f.data.length, 0);
console.log(
  `${payload.length} images (${(bytes / 1e6).toFixed(1)} MB) from ${imagesDir}; ${workers} worker process(es) x ` +
    `${threads} thread(s); ${availableParallelism()} cores`,
);

await ensureDatabase(DATABASE_URL);
const dbHandle = createDb(DATABASE_URL, { max: 2 });
await migrate(dbHandle.db);
const storeDir = await mkdtemp(path.join(tmpdir(), "bench-e2e-store-"));
const queueName = `bench-e2e-${randomUUID()}`;
const common = { DATABASE_URL, REDIS_URL, STORAGE_URL: pathToFileURL(storeDir).href, QUEUE_NAME: queueName };
const procs: ServiceProcess[] = [];

try {
  // The API only stores and enqueues here; it must not spend memory and CPU on a model of its own.
  const api = await startService(
    "api",
    "apps/api/src/index.ts",
    { ...common, PORT: "0", REQUIRE_MODEL: "false", MODEL_PATH: path.join(storeDir, "no-model.onnx") },
    "api listening",
  );
  procs.push(api);
  const started = await Promise.all(
    Array.from({ length: workers }, (_, i) =>
      startWorkerProcess(
        `worker-${i + 1}`,
        {
          ...common,
          MODEL_PATH: REAL_MODEL,
          WORKER_THREADS: String(threads),
          BATCH_SIZE: values["batch-size"] ?? "16",
          METRICS_PORT: "0",
          METRICS_HOST: "127.0.0.1",
        },
        120_000,
      ),
    ),
  );
  procs.push(...started);

  const form = new FormData();
  form.append("site", `bench-${queueName}`);
  for (const f of payload) form.append("images", new Blob([f.data], { type: "image/jpeg" }), f.name);
  const t0 = Date.now();
  const res = await fetch(`http://127.0.0.1:${api.ready.port}/v1/batches`, { method: "POST", body: form });
  const accepted = Date.now();
  if (res.status !== 202) throw new Error(`upload answered ${res.status}: ${await res.text()}`);
  const { id: batchId } = (await res.json()) as { id: string };

  for (;;) {
    const batch = await getBatch(dbHandle.db, batchId);
    if (batch?.status.startsWith("completed")) break;
    if (Date.now() - t0 > 15 * 60_000) throw new Error("batch did not complete within 15 minutes");
    await new Promise((r) => setTimeout(r, 100));
  }
  const summary = await dbHandle.db.execute<{
    n: string;
    failed: string;
    last: Date;
    first: Date;
    p50: number;
    p95: number;
    right: string;
  }>(sql`
    select count(*) as n, count(*) filter (where r.status = 'failed') as failed,
      max(r.created_at) as last, min(r.created_at) as first,
      percentile_cont(0.5) within group (order by r.end_to_end_ms) as p50,
      percentile_cont(0.95) within group (order by r.end_to_end_ms) as p95,
      count(*) filter (where i.filename like r.label || '-%') as right
    from results r join images i on i.id = r.image_id where r.batch_id = ${batchId}`);
  const s = summary.rows[0];
  if (!s) throw new Error("no results");
  const seconds = (new Date(s.last).getTime() - t0) / 1000;
  const n = Number(s.n);

  const perWorker = await Promise.all(
    started.map(async (w) => {
      const port = w.ready.metricsPort as number;
      const runs = await scrapeMetric(port, "garbage_worker_model_batch_size_count");
      const imgs = await scrapeMetric(port, "garbage_worker_model_batch_size_sum");
      return { images: imgs ?? 0, runs: runs ?? 0 };
    }),
  );
  console.log(
    `\nservice: ${n} results (${s.failed} failed), accuracy vs folder ${(Number(s.right) / n).toFixed(3)}`,
  );
  console.log(`  upload accepted (stored + enqueued) after ${((accepted - t0) / 1000).toFixed(1)} s`);
  console.log(`  first result after ${((new Date(s.first).getTime() - t0) / 1000).toFixed(1)} s`);
  console.log(`  last result after ${seconds.toFixed(1)} s: ${(n / seconds).toFixed(1)} images/s end to end`);
  console.log(
    `  per-image end-to-end latency p50 ${(s.p50 / 1000).toFixed(1)} s, p95 ${(s.p95 / 1000).toFixed(1)} s`,
  );
  for (const [i, w] of perWorker.entries()) {
    const mean = (w.images / Math.max(1, w.runs)).toFixed(1);
    console.log(`  worker-${i + 1}: ${w.images} images in ${w.runs} session.run calls (mean batch ${mean})`);
  }

  await Promise.all(procs.splice(0).map((p) => stopProcess(p, "SIGTERM")));
  const redis = createRedis(REDIS_URL, { forWorker: false });
  const queue = createQueue(redis, queueName);
  await queue.obliterate({ force: true });
  await queue.close();
  redis.disconnect();

  if (!values["no-cli"]) {
    console.log(`\nCLI: npm run -s garbage -- classify ${path.relative(REPO_ROOT, imagesDir)} --json`);
    const cliStart = Date.now();
    const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
      execFile(
        "npm",
        ["run", "-s", "garbage", "--", "classify", imagesDir, "--json", "--quiet"],
        { cwd: REPO_ROOT, maxBuffer: 256 * 1024 * 1024 },
        (err, stdout, stderr) => (err ? reject(err) : resolve({ stdout, stderr })),
      ),
    );
    const wall = (Date.now() - cliStart) / 1000;
    const rows = JSON.parse(stdout) as unknown[];
    const own = /images in ([\d.]+) s \(([\d.]+) images\/s\)/.exec(stderr);
    console.log(
      `  ${rows.length} images: ${(rows.length / wall).toFixed(1)} images/s over ${wall.toFixed(1)} s wall ` +
        `(process start and model load included)` +
        (own ? `; ${own[2]} images/s as the CLI reports it (classification only, ${own[1]} s)` : ""),
    );
  }
} finally {
  await Promise.all(procs.map((p) => stopProcess(p, "SIGKILL")));
  await dbHandle.close();
  await rm(storeDir, { recursive: true, force: true });
}
process.exit(0);
