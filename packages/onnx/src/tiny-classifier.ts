import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { int } from "./attributes";
import { OnnxGraphBuilder } from "./graph-builder";

export interface TinyClassifierOptions {
  classes: number;
  width: number;
  height: number;
  seed?: number;
}

export interface TinyClassifierWeights {
  /** [classes][3], row-major, used as Gemm B with transB=1. */
  weight: Float32Array;
  bias: Float32Array;
}

/** mulberry32: a tiny seeded PRNG, so fixtures and augmentations are identical on every machine and run. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Class k looks along hue angle 2πk/classes: its weights are the RGB components of that hue direction, so the
 * logit is the projection of the image's mean colour onto it. Pure red, green and blue thus pick the classes
 * nearest hue 0°, 120° and 240°: different classes whenever classes >= 3 (red and blue differ already at 2).
 * The seed adds jitter (±0.05 per weight, ±0.01 bias) so tests exercise non-trivial weights; it is smaller
 * than the gap between neighbouring classes up to 12 classes, so it cannot change those picks there.
 */
export function tinyClassifierWeights(classes: number, seed = 0): TinyClassifierWeights {
  if (!Number.isInteger(classes) || classes < 2)
    throw new Error(`classes must be an integer >= 2, got ${classes}`);
  const random = prng(seed);
  const weight = new Float32Array(classes * 3);
  const bias = new Float32Array(classes);
  for (let k = 0; k < classes; k++) {
    const angle = (2 * Math.PI * k) / classes;
    for (let c = 0; c < 3; c++) {
      weight[k * 3 + c] = Math.cos(angle - (2 * Math.PI * c) / 3) + (random() - 0.5) * 0.1;
    }
    bias[k] = (random() - 0.5) * 0.02;
  }
  return { weight, bias };
}

/**
 * A deterministic stand-in for a real classifier in other packages' tests: input "input" float32
 * [batch, 3, height, width] -> GlobalAveragePool -> Flatten -> Gemm -> output "logits" [batch, classes].
 */
export function buildTinyClassifier(options: TinyClassifierOptions): Buffer {
  const { classes, width, height, seed = 0 } = options;
  const { weight, bias } = tinyClassifierWeights(classes, seed);
  const g = new OnnxGraphBuilder({ graphName: "tiny_classifier" });
  g.addInput("input", ["batch", 3, height, width]);
  g.addInitializer("head.weight", weight, [classes, 3]);
  g.addInitializer("head.bias", bias, [classes]);
  g.addNode("GlobalAveragePool", ["input"], ["pooled"]);
  g.addNode("Flatten", ["pooled"], ["channel_means"], { axis: int(1) });
  g.addNode("Gemm", ["channel_means", "head.weight", "head.bias"], ["logits"], { transB: int(1) });
  g.addOutput("logits", ["batch", classes]);
  return g.toBuffer();
}

export interface TinyModelFiles {
  /** Written as `<dir>/<name>.onnx` with its manifest `<dir>/<name>.json`. */
  name?: string;
  classes: readonly string[];
  size?: number;
  seed?: number;
  /** Manifest fields to override, e.g. `temperature` or `input`. */
  manifest?: Record<string, unknown>;
}

/**
 * Writes the tiny classifier plus a garbage-sort manifest (RGB, /255, mean = std = 0.5, so channel means map
 * to [-1, 1]) and returns the .onnx path: the fixture every package's classifier tests load.
 */
export async function writeTinyModel(dir: string, o: TinyModelFiles): Promise<string> {
  const name = o.name ?? "tiny";
  const size = o.size ?? 8;
  const bytes = buildTinyClassifier({
    classes: o.classes.length,
    width: size,
    height: size,
    seed: o.seed ?? 0,
  });
  const file = path.join(dir, `${name}.onnx`);
  await writeFile(file, bytes);
  const manifest = {
    name,
    version: "test",
    file: `${name}.onnx`,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    classes: o.classes,
    input: {
      width: size,
      height: size,
      channelOrder: "RGB",
      scale: 1 / 255,
      mean: [0.5, 0.5, 0.5],
      std: [0.5, 0.5, 0.5],
    },
    ...o.manifest,
  };
  await writeFile(path.join(dir, `${name}.json`), JSON.stringify(manifest));
  return file;
}
