/**
 * npm run soak -- [--images 10000] [--workers 2] [--model int8|fp32|tiny|<path>] [--batch 100] [--every 5]
 *
 * The service under a long steady load, to see that memory stays flat and nothing is lost: the API and the
 * workers as real processes (services.ts: `node --import tsx`), the images posted in batches of --batch with
 * at most a few batches unfinished at a time (the queue stays short, as in a facility that keeps up), every
 * process's RSS sampled every --every seconds. Prints a line per sample, then throughput and each process's
 * RSS at start and end with its slope, and fails (exit 1) unless every image has exactly one result and every
 * batch completed. Uses the bench database (BENCH_DATABASE_URL) and Redis (BENCH_REDIS_URL) on a new queue.
 */
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { resolveModel } from "@garbage/inference";
import { writeTinyModel } from "@garbage/onnx";
import { sql } from "drizzle-orm";
import { Generated, MODELS_DIR, photoSet } from "./images.js";
import { statusKiB } from "./rss.js";
import { Services } from "./services.js";
import { type Sample, summarise } from "./soak-report.js";
import { sleep } from "./stats.js";

const USAGE = `usage: npm run soak -- [options]
  --images N        images in all (default 10000)
  --workers N       worker processes (default 2), each with cores / N onnxruntime threads
  --model M         int8 (default), fp32, tiny (a generated 8x8 model: the service without the model's cost)
                    or a path to an .onnx with its manifest
  --batch N         images per POST /v1/batches (default 100)
  --backlog N       most batches submitted and not yet completed (default 4)
  --every S         seconds between RSS samples (default 5)`;

const { values } = parseArgs({
  options: {
    images: { type: "string", default: "10000" },
    workers: { type: "string", default: "2" },
    model: { type: "string", default: "int8" },
    batch: { type: "string", default: "100" },
    backlog: { type: "string", default: "4" },
    every: { type: "string", default: "5" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const int = (name: keyof typeof values) => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a positive integer\n\n${USAGE}`);
    process.exit(2);
  }
  return n;
};
const total = int("images");
const workers = int("workers");
const perBatch = Math.min(int("batch"), total);
const backlog = int("backlog");
const everyMs = int("every") * 1000;

const generated = await Generated.create();
const services = await Services.open();
let exitCode = 1;
try {
  const modelPath =
    values.model === "tiny"
      ? await writeTinyModel(generated.dir, {
          classes: ["a", "b", "c"],
          seed: 1,
          manifest: { version: "soak" },
        })
      : resolveModel(values.model, MODELS_DIR, "cpu", process.env.INIT_CWD ?? process.cwd());
  const set = await photoSet(generated, (s) => console.error(s));
  const photos = await Promise.all(set.files.map((f) => readFile(f)));

  const env = services.env("soak");
  const key = `soak-${env.QUEUE_NAME}`;
  const api = await services.startApi({
    ...env,
    API_KEYS: key,
    // The API only stores and enqueues here; no model of its own.
    REQUIRE_MODEL: "false",
    MODEL_PATH: path.join(services.storeDir, "no-model.onnx"),
  });
  const threads = Math.max(1, Math.floor(os.availableParallelism() / workers));
  const started = await services.startWorkers(workers, {
    ...env,
    MODEL_PATH: modelPath,
    WORKER_THREADS: String(threads),
  });
  const procs = [{ name: "api", pid: api.proc.pid }, ...started.map((w) => ({ name: w.name, pid: w.pid }))];
  console.log(
    `soak: ${total} ${set.name} images in batches of ${perBatch}, model ${path.basename(modelPath)}, ` +
      `${workers} worker(s) x ${threads} thread(s), RSS every ${everyMs / 1000} s`,
  );
  console.log(["t (s)", "done", "img/s", ...procs.map((p) => `${p.name} MiB`)].join("\t"));

  const { db } = services.db;
  const site = `soak-${env.QUEUE_NAME}`;
  const batchIds: string[] = [];
  const processed = async () => {
    const r = await db.execute<{ n: string }>(
      sql`select coalesce(sum(processed), 0) as n from batches where site = ${site}`,
    );
    return Number(r.rows[0]?.n ?? 0);
  };
  const open = async () => {
    const r = await db.execute<{ n: string }>(
      sql`select count(*) as n from batches where site = ${site} and completed_at is null`,
    );
    return Number(r.rows[0]?.n ?? 0);
  };

  const t0 = Date.now();
  const samples: Sample[] = [];
  const sample = async () => {
    const s: Sample = {
      t: (Date.now() - t0) / 1000,
      done: await processed(),
      rssMiB: procs.map((p) => (statusKiB(p.pid, "VmRSS") ?? 0) / 1024),
    };
    const prev = samples.at(-1);
    samples.push(s);
    const rate = prev ? (s.done - prev.done) / (s.t - prev.t) : 0;
    console.log([s.t.toFixed(0), s.done, rate.toFixed(1), ...s.rssMiB.map((m) => m.toFixed(0))].join("\t"));
  };
  await sample();
  let nextSample = Date.now() + everyMs;
  const sampleIfDue = async () => {
    if (Date.now() < nextSample) return;
    nextSample += everyMs;
    await sample();
  };

  let sent = 0;
  let photo = 0;
  while (sent < total) {
    await sampleIfDue();
    if ((await open()) >= backlog) {
      await sleep(100);
      continue;
    }
    const n = Math.min(perBatch, total - sent);
    const form = new FormData();
    form.append("site", site);
    for (let i = 0; i < n; i++) {
      const bytes = photos[photo++ % photos.length] as Buffer;
      form.append("images", new Blob([new Uint8Array(bytes)], { type: "image/jpeg" }), `${sent + i}.jpg`);
    }
    const res = await fetch(`http://127.0.0.1:${api.port}/v1/batches`, {
      method: "POST",
      body: form,
      headers: { Authorization: `Bearer ${key}` },
    });
    if (res.status !== 202) throw new Error(`POST /v1/batches answered ${res.status}: ${await res.text()}`);
    batchIds.push(((await res.json()) as { id: string }).id);
    sent += n;
  }
  while ((await processed()) < total) {
    if (started.every((w) => w.child.exitCode !== null || w.child.signalCode !== null))
      throw new Error("every worker exited before the images were done");
    await sampleIfDue();
    await sleep(100);
  }
  const seconds = (Date.now() - t0) / 1000;
  await sample();

  // Exactly once: one result per image of the run, every batch completed with counters equal to its rows.
  const check = await db.execute<{ images: string; results: string; open: string; off: string }>(sql`
    select (select count(*) from images i join batches b on b.id = i.batch_id where b.site = ${site}) as images,
      (select count(*) from results r join batches b on b.id = r.batch_id where b.site = ${site}) as results,
      (select count(*) from batches where site = ${site} and completed_at is null) as open,
      (select count(*) from batches b where site = ${site} and b.processed <> (select count(*) from results r
         where r.batch_id = b.id)) as off`);
  const c = check.rows[0];
  const ok =
    Number(c?.images) === total &&
    Number(c?.results) === total &&
    Number(c?.open) === 0 &&
    Number(c?.off) === 0;
  console.log(
    summarise(
      samples,
      procs.map((p) => p.name),
      { total, seconds, batches: batchIds.length },
    ),
  );
  console.log(
    `exactly once: ${c?.images} images, ${c?.results} results, ${c?.open} batches open, ` +
      `${c?.off} batches whose counters differ from their rows: ${ok ? "OK" : "FAILED"}`,
  );
  exitCode = ok ? 0 : 1;
} catch (err) {
  console.error(`soak failed: ${err instanceof Error ? err.stack : String(err)}`);
} finally {
  await services.stopAll().catch(() => {});
  await services.close();
  await generated.dispose();
}
process.exit(exitCode);
