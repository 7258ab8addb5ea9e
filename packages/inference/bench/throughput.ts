/**
 * npm run bench [-- --model path --images dir --threads 2 --seconds 10]
 *
 * Measures, on this machine: sharp decode+resize+tensor rate, session.run at batch 1 and 16, and the
 * full classify path; plus resident memory. Numbers go to stdout as one JSON object at the end.
 */
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { listImages, loadClassifier, type Pixels, tensorSize, writeTensor } from "../src/index.js";
import { createSession, runBatch } from "../src/session.js";

const root = path.resolve(import.meta.dirname, "../../..");
const { values } = parseArgs({
  options: {
    model: { type: "string", default: path.join(root, "models/garbage-resnet50.onnx") },
    images: { type: "string", default: path.join(root, "../shared/datasets/trashnet/val") },
    threads: { type: "string", default: String(Math.min(2, os.availableParallelism())) },
    seconds: { type: "string", default: "8" },
  },
});
if (!existsSync(values.model)) throw new Error(`no model at ${values.model}`);
if (!existsSync(values.images)) throw new Error(`no images at ${values.images}`);
const threads = Number(values.threads);
const budget = Number(values.seconds) * 1000;
const files = (await listImages([values.images])).slice(0, 256);
const log = (s: string) => process.stderr.write(`${s}\n`);

const clf = await loadClassifier({ model: values.model, threads, maxBatch: 16 });
const spec = clf.manifest.input;

async function timed<T>(label: string, unit: number, fn: () => Promise<T>): Promise<number> {
  await fn(); // warm-up
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < budget) {
    await fn();
    n += unit;
  }
  const rate = n / ((performance.now() - start) / 1000);
  log(`${label.padEnd(36)} ${rate.toFixed(1)} images/s`);
  return rate;
}

let cursor = 0;
const nextFiles = (k: number) => Array.from({ length: k }, () => files[cursor++ % files.length] as string);
const decodeRate = await timed("decode+resize+tensor (concurrent 16)", 16, async () => {
  const px = await Promise.all(nextFiles(16).map((f) => clf.decode(f)));
  const t = new Float32Array(tensorSize(spec));
  for (const p of px) writeTensor(p, spec, t);
});

const pixels: Pixels[] = await Promise.all(files.slice(0, 16).map((f) => clf.decode(f)));
const session = await createSession(values.model, { threads });
const runRate = async (batch: number) => {
  const input = new Float32Array(batch * tensorSize(spec));
  for (let i = 0; i < batch; i++)
    writeTensor(pixels[i % pixels.length] as Pixels, spec, input, i * tensorSize(spec));
  return timed(`session.run batch ${batch} (${threads} threads)`, batch, () =>
    runBatch(session, input, [batch, 3, spec.height, spec.width], spec.name),
  );
};
const run1 = await runRate(1);
const run16 = await runRate(16);
await session.release();
const endToEnd = await timed("classify(files) batch 16, end to end", 16, () => clf.classify(nextFiles(16)));
await clf.close();

const result = {
  machine: `${os.cpus()[0]?.model ?? "cpu"} x${os.availableParallelism()}`,
  threads,
  model: path.relative(root, values.model),
  decodeImagesPerSecond: decodeRate,
  runBatch1ImagesPerSecond: run1,
  runBatch16ImagesPerSecond: run16,
  classifyImagesPerSecond: endToEnd,
  maxRssMiB: process.resourceUsage().maxRSS / 1024,
};
console.log(JSON.stringify(result, null, 2));
