/**
 * What one more loaded model version costs a worker process (the README's MAX_MODELS numbers): resident memory
 * of this process after starting an inference thread per model and running one BATCH_SIZE batch of real
 * photos through each (onnxruntime allocates its arena on the first run), model by model.
 *
 *   npx tsx apps/worker/scripts/model-rss.ts [int8|fp32|path ...]   # default: int8 int8 fp32
 *
 * Each load is a separate InferenceThread, exactly as the worker's pool starts them (the same file loaded
 * twice stands for two registry versions of the same architecture).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { InferenceThread, listImages, resolveModel } from "@garbage/inference";
import { DEFAULT_BATCH_SIZE, REPO_ROOT } from "../src/config";

const rssMiB = () => process.memoryUsage().rss / 2 ** 20;
const peakMiB = async () => {
  const status = await readFile("/proc/self/status", "utf8");
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) / 1024;
};

const choices = process.argv.slice(2);
const models = (choices.length ? choices : ["int8", "int8", "fp32"]).map((c) =>
  resolveModel(c, path.join(REPO_ROOT, "models"), "cpu", process.cwd()),
);
const photos = (await listImages([path.resolve(REPO_ROOT, "../shared/datasets/trashnet/val")])).slice(
  0,
  DEFAULT_BATCH_SIZE,
);
const images = await Promise.all(photos.map((p) => readFile(p)));
const threads = Number(process.env.WORKER_THREADS ?? 2);

const settle = async () => {
  global.gc?.();
  await new Promise((r) => setTimeout(r, 500));
};
await settle();
let before = rssMiB();
console.log(
  `baseline: rss ${before.toFixed(0)} MiB (node, onnxruntime, sharp loaded; ${images.length} photos)`,
);
const loaded: InferenceThread[] = [];
for (const model of models) {
  const started = performance.now();
  const thread = await InferenceThread.start({
    model,
    provider: "cpu",
    threads,
    maxBatch: DEFAULT_BATCH_SIZE,
  });
  const loadMs = performance.now() - started;
  loaded.push(thread);
  await settle();
  const afterLoad = rssMiB();
  // Copies: the thread takes over what it is given.
  for (let i = 0; i < 3; i++) await thread.classify(images.map((b) => new Uint8Array(b)));
  await settle();
  const afterRun = rssMiB();
  console.log(
    `${path.basename(model)}: loaded in ${loadMs.toFixed(0)} ms, +${(afterLoad - before).toFixed(0)} MiB loaded, +${(afterRun - before).toFixed(0)} MiB after batches of ${images.length}; rss ${afterRun.toFixed(0)} MiB, peak ${(await peakMiB()).toFixed(0)} MiB`,
  );
  before = afterRun;
}
for (const t of loaded) await t.close();
