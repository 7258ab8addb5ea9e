/**
 * npm run quantize: the int8 model (models/garbage-resnet50-int8.onnx and its manifest) from the shipped
 * float model, calibrated on TrashNet training images; reports its `val` accuracy beside the float model's
 * and how often the two agree on the top-1. `npm run train` runs the same step on every new model.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import {
  listImageFolder,
  loadClassifier,
  type ModelManifest,
  manifestPathFor,
  manifestSchema,
  sha256File,
} from "@garbage/inference";
import { REPO_ROOT } from "./fetch-resnet.js";
import { evalModel } from "./measure.js";
import { quantizeModel, spread } from "./quantize.js";

export async function makeInt8(opts: {
  model: string;
  out?: string;
  train: string;
  val: string;
  count: number;
  threads: number;
  log: (s: string) => void;
}): Promise<string> {
  const out = opts.out ?? opts.model.replace(/\.onnx$/, "-int8.onnx");
  const base = manifestSchema.parse(JSON.parse(await readFile(manifestPathFor(opts.model), "utf8")));
  const all = (await listImageFolder(opts.train, base.classes)).filter((i) => i.label >= 0);
  const images = spread(all, opts.count);
  const t0 = performance.now();
  // Calibration takes minutes: its ranges are kept per float model and reused when quantizing it again.
  const rangesFile = path.join(REPO_ROOT, ".cache/int8", `${base.sha256.slice(0, 16)}-ranges.json`);
  await mkdir(path.dirname(rangesFile), { recursive: true });
  const q = await quantizeModel({
    model: opts.model,
    out,
    spec: base.input,
    images,
    threads: opts.threads,
    rangesFile,
  });
  opts.log(
    `quantized ${q.tensors} activation tensors in ${((performance.now() - t0) / 1000).toFixed(0)} s, ${q.reused ? `ranges reused from ${path.relative(REPO_ROOT, q.ranges)}` : `calibrated on ${q.images} training images`}`,
  );

  const fp32Val = base.metrics.find((m) => m.dataset?.endsWith("trashnet/val"));
  const manifest = await int8Manifest(base, out, q.images, path.relative(REPO_ROOT, opts.train));
  // The classifier needs the manifest beside the model before the int8 model can be measured.
  await writeFile(manifestPathFor(out), `${JSON.stringify(manifest, null, 2)}\n`);
  const agreement = await topOneAgreement(opts.model, out, opts.val, base.classes, opts.threads);
  const measured = await evalModel(out, opts.val, opts.threads);
  const { riskCoverage: _c, unreadableFiles: _u, model: _m, ...kept } = measured;
  manifest.metrics = [
    { ...kept, dataset: path.relative(REPO_ROOT, opts.val) } as ModelManifest["metrics"][number],
  ];
  manifest.quantization = {
    ...(manifest.quantization as Record<string, unknown>),
    val: {
      floatAccuracy: fp32Val?.accuracy ?? null,
      int8Accuracy: measured.accuracy,
      top1Agreement: agreement.rate,
      images: agreement.n,
    },
  };
  await writeFile(manifestPathFor(out), `${JSON.stringify(manifest, null, 2)}\n`);
  opts.log(
    `int8 val accuracy ${measured.accuracy.toFixed(4)} (float ${fp32Val?.accuracy.toFixed(4) ?? "?"}), top-1 agreement ${(agreement.rate * 100).toFixed(1)} % of ${agreement.n}`,
  );
  return out;
}

/** The int8 model's manifest: the float model's, with its own file, hash and how it was quantized. */
export async function int8Manifest(
  base: ModelManifest,
  out: string,
  images: number,
  source: string,
): Promise<ModelManifest> {
  return {
    ...base,
    name: `${base.name}-int8`,
    file: path.basename(out),
    sha256: await sha256File(out),
    metrics: [],
    quantization: {
      from: { file: base.file, sha256: base.sha256 },
      format: "QDQ (onnxruntime fuses QLinearConv, QLinearAdd)",
      activations:
        "uint8, asymmetric, per tensor; range = 0.001th..99.999th percentile; ReLU folded into the range",
      weights:
        "7-bit values in int8, symmetric, per output channel (no int16 saturation on CPUs without VNNI)",
      biases: "int32, scale = input scale x weight scale",
      float: "the fc head and the pooled embedding",
      calibrationImages: images,
      calibrationSource: source,
    },
  };
}

export async function topOneAgreement(
  a: string,
  b: string,
  data: string,
  classes: string[],
  threads: number,
) {
  const files = (await listImageFolder(data, classes)).filter((i) => i.label >= 0).map((i) => i.file);
  const labels = async (model: string) => {
    const clf = await loadClassifier({ model, threads });
    try {
      const out: (string | null)[] = [];
      for (let i = 0; i < files.length; i += 16) {
        const res = await clf.classify(files.slice(i, i + 16));
        out.push(...res.map((r) => (r.ok ? r.label : null)));
      }
      return out;
    } finally {
      await clf.close();
    }
  };
  const [x, y] = [await labels(a), await labels(b)];
  const same = x.filter((l, i) => l !== null && l === y[i]).length;
  return { n: files.length, rate: files.length ? same / files.length : 0 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const shared = path.join(REPO_ROOT, "../shared/datasets");
  const { values } = parseArgs({
    options: {
      model: { type: "string", default: path.join(REPO_ROOT, "models/garbage-resnet50.onnx") },
      out: { type: "string" },
      train: { type: "string", default: path.join(shared, "trashnet/train") },
      val: { type: "string", default: path.join(shared, "trashnet/val") },
      count: { type: "string", default: "180" },
      threads: { type: "string", default: "2" },
    },
  });
  await makeInt8({
    model: path.resolve(values.model),
    ...(values.out ? { out: path.resolve(values.out) } : {}),
    train: values.train,
    val: values.val,
    count: Number(values.count),
    threads: Number(values.threads),
    log: (s) => process.stderr.write(`[quantize] ${s}\n`),
  });
}
