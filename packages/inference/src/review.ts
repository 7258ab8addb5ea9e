import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";

/**
 * When a prediction should go to a person instead of being trusted: its calibrated confidence is low, or the
 * image lies far from everything the model was trained on, measured in the model's own embedding space.
 */
export const reviewSpecSchema = z.object({
  /** Below this calibrated top-1 probability the image needs review. */
  minConfidence: z.number().min(0).max(1),
  /** Above this k-NN cosine distance to the training embeddings the image needs review. */
  maxDistance: z.number().optional(),
  /** The distance is to the k-th nearest reference embedding. */
  k: z.number().int().positive().default(10),
  reference: z
    .object({
      /** float16 little-endian: mean[embedding], projection[embedding x dims], references[count x dims]. */
      file: z.string(),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      embedding: z.number().int().positive(),
      dims: z.number().int().positive(),
      count: z.number().int().positive(),
    })
    .optional(),
});
export type ReviewSpec = z.infer<typeof reviewSpecSchema>;

/** Used for models whose manifest has no review section (e.g. test fixtures). */
export const DEFAULT_MIN_CONFIDENCE = 0.5;

export interface ReviewFlags {
  needsReview: boolean;
  lowConfidence: boolean;
  /** Far from the training data; false when the model carries no reference embeddings. */
  unfamiliar: boolean;
  /** k-NN cosine distance to the training embeddings, or null without references. */
  distance: number | null;
}

export interface NoveltyIndex {
  readonly embedding: number;
  /** 1 - cosine similarity to the k-th nearest reference, after centring and projection. */
  distance(embedding: ArrayLike<number>): number;
}

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

function normalize(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  const inv = n > 0 ? 1 / Math.sqrt(n) : 0;
  for (let i = 0; i < v.length; i++) v[i] = (v[i] as number) * inv;
  return v;
}

export function createNoveltyIndex(
  data: Float32Array,
  spec: { embedding: number; dims: number; count: number },
  k: number,
): NoveltyIndex {
  const { embedding: e, dims: d, count: n } = spec;
  if (data.length !== e + e * d + n * d) {
    throw new Error(
      `reference embeddings hold ${data.length} values, the manifest implies ${e + e * d + n * d}`,
    );
  }
  const mean = data.subarray(0, e);
  const proj = data.subarray(e, e + e * d);
  const refs = data.subarray(e + e * d);
  const kth = Math.min(k, n);
  return {
    embedding: e,
    distance(raw) {
      if (raw.length !== e) throw new Error(`embedding has ${raw.length} values, expected ${e}`);
      const u = normalize(Float32Array.from(raw));
      for (let i = 0; i < e; i++) u[i] = (u[i] as number) - (mean[i] as number);
      const v = new Float32Array(d);
      for (let i = 0; i < e; i++) {
        const ui = u[i] as number;
        if (ui === 0) continue;
        const row = i * d;
        for (let j = 0; j < d; j++) v[j] = (v[j] as number) + ui * (proj[row + j] as number);
      }
      normalize(v);
      // Keep the k largest similarities in a small sorted array: n is a few thousand, k about ten.
      const best = new Float32Array(kth).fill(-2);
      for (let r = 0; r < n; r++) {
        let s = 0;
        const off = r * d;
        for (let j = 0; j < d; j++) s += (v[j] as number) * (refs[off + j] as number);
        if (s <= (best[kth - 1] as number)) continue;
        let p = kth - 1;
        while (p > 0 && (best[p - 1] as number) < s) {
          best[p] = best[p - 1] as number;
          p--;
        }
        best[p] = s;
      }
      return 1 - (best[kth - 1] as number);
    },
  };
}

export async function loadNoveltyIndex(manifestPath: string, spec: ReviewSpec): Promise<NoveltyIndex | null> {
  const ref = spec.reference;
  if (!ref) return null;
  const file = path.resolve(path.dirname(manifestPath), ref.file);
  const bytes = await readFile(file).catch((err: Error) => {
    throw new Error(`cannot read reference embeddings ${file}: ${err.message}`);
  });
  const actual = createHash("sha256").update(bytes).digest("hex");
  if (actual !== ref.sha256) {
    throw new Error(`reference embeddings ${file} have sha256 ${actual}, the manifest says ${ref.sha256}`);
  }
  const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  const data = new Float32Array(halves.length);
  for (let i = 0; i < halves.length; i++) data[i] = halfToFloat(halves[i] as number);
  return createNoveltyIndex(data, ref, spec.k);
}

export function reviewFlags(
  confidence: number,
  distance: number | null,
  spec: Pick<ReviewSpec, "minConfidence" | "maxDistance">,
): ReviewFlags {
  const lowConfidence = confidence < spec.minConfidence;
  const unfamiliar = distance !== null && spec.maxDistance !== undefined && distance > spec.maxDistance;
  return { needsReview: lowConfidence || unfamiliar, lowConfidence, unfamiliar, distance };
}
