/**
 * The int8 model: quantize.py writes a probe (the float model with every activation as an output); this file
 * runs it over training images exactly as the service decodes them, takes each tensor's 0.001th and
 * 99.999th percentiles (two passes: range, then a fine histogram), and has quantize.py write the QDQ model.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createSession, type InputSpec, type LabelledImage, runOutputs } from "@garbage/inference";
import { tensorBatch } from "./embed.js";
import { runPython } from "./python.js";

const BINS = 16_384;
const TAIL = 1e-5;

/** Every nth image of the list, so the calibration set spans all classes of a sorted ImageFolder. */
export function spread<T>(items: readonly T[], count: number): T[] {
  if (items.length <= count) return [...items];
  return Array.from({ length: count }, (_, i) => items[Math.floor((i * items.length) / count)] as T);
}

/** The 0.001th and 99.999th percentiles of a histogram over [lo, hi]. */
export function tails(hist: Float64Array, lo: number, hi: number, tail = TAIL): [number, number] {
  const total = hist.reduce((a, b) => a + b, 0);
  const width = (hi - lo) / hist.length;
  let acc = 0;
  let low = lo;
  for (let i = 0; i < hist.length; i++) {
    acc += hist[i] ?? 0;
    if (acc >= tail * total) {
      low = lo + i * width;
      break;
    }
  }
  acc = 0;
  let high = hi;
  for (let i = hist.length - 1; i >= 0; i--) {
    acc += hist[i] ?? 0;
    if (acc >= tail * total) {
      high = lo + (i + 1) * width;
      break;
    }
  }
  return [low, high];
}

async function* activations(
  probe: string,
  names: string[],
  spec: InputSpec,
  images: LabelledImage[],
  threads?: number,
) {
  const session = await createSession(probe, { threads });
  try {
    for (let start = 0; start < images.length; start += 4) {
      const { batch, good } = await tensorBatch(images.slice(start, start + 4), spec);
      if (good.length === 0) continue;
      yield await runOutputs(session, batch, [good.length, 3, spec.height, spec.width], spec.name, names);
    }
  } finally {
    await session.release();
  }
}

export async function quantizeModel(opts: {
  model: string;
  out: string;
  spec: InputSpec;
  images: LabelledImage[];
  threads?: number;
  /** Where the activation ranges are kept; reused when present (calibration takes minutes). */
  rangesFile?: string;
  weightBits?: 7 | 8;
}): Promise<{ tensors: number; images: number; ranges: string; reused: boolean }> {
  const work = await mkdtemp(path.join(tmpdir(), "garbage-int8-"));
  try {
    const probe = path.join(work, "probe.onnx");
    const tensorsFile = path.join(work, "tensors.json");
    await runPython("quantize.py", [
      "probe",
      "--model",
      opts.model,
      "--out",
      probe,
      "--tensors",
      tensorsFile,
    ]);
    const names = JSON.parse(await readFile(tensorsFile, "utf8")) as string[];
    const rangesFile = opts.rangesFile ?? path.join(work, "ranges.json");
    const reused = await readFile(rangesFile, "utf8").then(
      () => true,
      () => false,
    );
    if (!reused) {
      await writeFile(rangesFile, JSON.stringify(await calibrate(probe, names, opts)));
    }
    await mkdir(path.dirname(opts.out), { recursive: true });
    await runPython("quantize.py", [
      "quantize",
      "--model",
      opts.model,
      "--ranges",
      rangesFile,
      "--out",
      opts.out,
      "--weight-bits",
      String(opts.weightBits ?? 7),
    ]);
    return { tensors: names.length, images: opts.images.length, ranges: rangesFile, reused };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function calibrate(
  probe: string,
  names: string[],
  opts: { spec: InputSpec; images: LabelledImage[]; threads?: number },
): Promise<Record<string, [number, number]>> {
  const lo = new Float64Array(names.length).fill(Infinity);
  const hi = new Float64Array(names.length).fill(-Infinity);
  for await (const outs of activations(probe, names, opts.spec, opts.images, opts.threads)) {
    outs.forEach(({ data }, t) => {
      for (let i = 0; i < data.length; i++) {
        const v = data[i] as number;
        if (v < (lo[t] as number)) lo[t] = v;
        if (v > (hi[t] as number)) hi[t] = v;
      }
    });
  }
  const hists = names.map(() => new Float64Array(BINS));
  for await (const outs of activations(probe, names, opts.spec, opts.images, opts.threads)) {
    outs.forEach(({ data }, t) => {
      const h = hists[t] as Float64Array;
      const l = lo[t] as number;
      const k = BINS / Math.max((hi[t] as number) - l, 1e-12);
      for (let i = 0; i < data.length; i++) {
        const b = Math.min(BINS - 1, Math.floor(((data[i] as number) - l) * k));
        h[b] = (h[b] as number) + 1;
      }
    });
  }
  return Object.fromEntries(
    names.map((n, t) => [n, tails(hists[t] as Float64Array, lo[t] as number, hi[t] as number)]),
  );
}
