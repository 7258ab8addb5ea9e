import { copyFile, mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import {
  computeMetrics,
  createSession,
  expectedCalibrationError,
  type InputSpec,
  type LabelledImage,
  loadClassifier,
  runBatch,
  sha256File,
  softmax,
  tensorSize,
} from "@garbage/inference";
import { argmaxRows, fitTemperature } from "./head-selection.js";

/** Runs an ONNX classifier over the val tensors and returns its logits, [n, k] row-major. */
export async function valLogits(
  model: string,
  spec: InputSpec,
  data: Float32Array,
  n: number,
  threads: number,
) {
  const session = await createSession(model, { threads });
  const size = tensorSize(spec);
  const rows: Float32Array[] = [];
  let k = 0;
  for (let i = 0; i < n; i += 32) {
    const m = Math.min(32, n - i);
    const out = await runBatch(
      session,
      data.subarray(i * size, (i + m) * size),
      [m, 3, spec.height, spec.width],
      spec.name,
    );
    rows.push(Float32Array.from(out.data));
    k = out.width;
  }
  await session.release();
  const logits = new Float64Array(n * k);
  let o = 0;
  for (const r of rows) {
    logits.set(r, o);
    o += r.length;
  }
  return { logits, k };
}

/** The export check: same top-1 on every image, and the largest probability difference. */
export function compareWithTorch(logits: Float64Array, k: number, torchProbs: number[][]) {
  let maxAbsDiff = 0;
  let top1Mismatches = 0;
  torchProbs.forEach((tp, i) => {
    const p = softmax(logits.subarray(i * k, (i + 1) * k));
    p.forEach((v, c) => {
      maxAbsDiff = Math.max(maxAbsDiff, Math.abs(v - (tp[c] as number)));
    });
    if (p.indexOf(Math.max(...p)) !== tp.indexOf(Math.max(...tp))) top1Mismatches++;
  });
  return { images: torchProbs.length, maxAbsDiff, top1Mismatches };
}

/**
 * Fits the softmax temperature on val, writes the model and its manifest, then measures the written model
 * through the serving path (file decode, classifier) so the manifest reports what production runs.
 */
export async function finalize(o: {
  model: string;
  out: string;
  classes: readonly string[];
  spec: InputSpec;
  val: LabelledImage[];
  valData: Float32Array;
  valName: string;
  threads: number;
  training: Record<string, unknown>;
  log: (s: string) => void;
}) {
  const k = o.classes.length;
  const { logits } = await valLogits(o.model, o.spec, o.valData, o.val.length, o.threads);
  const y = o.val.map((i) => i.label);
  const temperature = fitTemperature(logits, y, k);
  const pred = argmaxRows(logits, k);
  const correct = pred.map((p, i) => p === y[i]);
  const conf = (t: number) =>
    pred.map((p, i) => softmax(logits.subarray(i * k, (i + 1) * k), t)[p] as number);
  const eceBefore = expectedCalibrationError(conf(1), correct).ece;
  const eceAfter = expectedCalibrationError(conf(temperature), correct).ece;
  o.log(`temperature ${temperature.toFixed(3)}: val ECE ${eceBefore.toFixed(4)} -> ${eceAfter.toFixed(4)}`);

  await mkdir(path.dirname(o.out), { recursive: true });
  await copyFile(o.model, `${o.out}.tmp`);
  await rename(`${o.out}.tmp`, o.out);
  const manifestPath = o.out.replace(/\.onnx$/, ".json");
  const manifest = {
    name: path.basename(o.out, ".onnx"),
    version: new Date().toISOString().slice(0, 10),
    file: path.basename(o.out),
    sha256: await sha256File(o.out),
    classes: o.classes,
    input: o.spec,
    output: { name: "logits", kind: "logits" },
    temperature,
    calibration: { method: "temperature scaling on val NLL", eceBefore, eceAfter, bins: 15 },
    metrics: [] as unknown[],
    training: o.training,
  };
  await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);

  const clf = await loadClassifier({ model: o.out, threads: o.threads, maxBatch: 16 });
  const outcomes = await clf.classify(o.val.map((i) => i.file));
  await clf.close();
  const served = outcomes.map((r) => (r.ok ? o.classes.indexOf(r.label) : -1));
  const m = computeMetrics(o.classes, y, served);
  manifest.metrics = [{ dataset: o.valName, ...m }];
  await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  return { metrics: m, temperature, eceBefore, eceAfter };
}
