import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { type TinyModelFiles, writeTinyModel } from "./tiny-classifier";

export interface TinyReviewModelFiles extends TinyModelFiles {
  /** Reference embeddings in logit space (one value per class); normalised here. */
  references: readonly (readonly number[])[];
  /** Above this k-NN cosine distance an image is unfamiliar. */
  maxDistance: number;
  minConfidence?: number;
  k?: number;
}

/** float32 -> IEEE half, round to nearest; subnormals flush to zero, which unit vectors never need. */
export function floatToHalf(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0] as number;
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  if (exp <= 0) return sign;
  if (exp >= 31) return sign | 0x7c00;
  // Addition, not OR: a mantissa that rounds up to 1024 carries into the exponent.
  return sign | ((exp << 10) + Math.round((u & 0x7fffff) / 8192));
}

/**
 * The tiny classifier with a manifest `review` section, so tests see real `unfamiliar` flags and novelty
 * distances without a trained model: its logits double as the embedding, the reference file is float16 with
 * a zero mean and an identity projection, and the references are the given vectors. Returns the .onnx path.
 */
export async function writeTinyReviewModel(dir: string, o: TinyReviewModelFiles): Promise<string> {
  const width = o.classes.length;
  const name = o.name ?? "tiny";
  const values: number[] = new Array(width).fill(0);
  for (let i = 0; i < width; i++) {
    for (let j = 0; j < width; j++) values.push(i === j ? 1 : 0);
  }
  for (const ref of o.references) {
    if (ref.length !== width) throw new Error(`reference has ${ref.length} values, expected ${width}`);
    const norm = Math.hypot(...ref);
    values.push(...ref.map((x) => x / norm));
  }
  const bytes = Buffer.from(Uint16Array.from(values, floatToHalf).buffer);
  const file = `${name}.references.bin`;
  await writeFile(path.join(dir, file), bytes);
  return writeTinyModel(dir, {
    ...o,
    manifest: {
      output: { name: "logits", kind: "logits", embedding: "logits" },
      review: {
        minConfidence: o.minConfidence ?? 0.5,
        maxDistance: o.maxDistance,
        k: o.k ?? 1,
        reference: {
          file,
          sha256: createHash("sha256").update(bytes).digest("hex"),
          embedding: width,
          dims: width,
          count: o.references.length,
        },
      },
      ...o.manifest,
    },
  });
}
