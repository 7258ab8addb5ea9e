import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { createNoveltyIndex, halfToFloat, loadNoveltyIndex, reviewFlags } from "../src/review.js";

/** float32 -> IEEE half, round-to-nearest, enough for the small test values below. */
function toHalf(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0] as number;
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  if (exp <= 0) return sign;
  return sign | (exp << 10) | Math.round((u & 0x7fffff) / 8192);
}

// Embedding width 3, projection to 2 dims (drop the last coordinate), references along +x and +y.
const mean = [0, 0, 0];
const proj = [1, 0, 0, 1, 0, 0];
const refs = [1, 0, 0, 1];
const data = Float32Array.from([...mean, ...proj, ...refs]);
const spec = { embedding: 3, dims: 2, count: 2 };

describe("halfToFloat", () => {
  it("decodes normal, subnormal, zero and infinite halves", () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x3555)).toBeCloseTo(0.33325, 5);
    expect(halfToFloat(0x0001)).toBeCloseTo(5.96e-8, 10);
    expect(halfToFloat(0)).toBe(0);
    expect(halfToFloat(0x7c00)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe("novelty index", () => {
  it("measures the cosine distance to the k-th nearest reference", () => {
    const k1 = createNoveltyIndex(data, spec, 1);
    expect(k1.distance([2, 0, 5])).toBeCloseTo(0, 6); // projects onto +x, a reference
    expect(k1.distance([1, 1, 0])).toBeCloseTo(1 - Math.SQRT1_2, 6);
    expect(k1.distance([-1, 0, 0])).toBeCloseTo(1, 6); // nearest is +y at 90 degrees
    const k2 = createNoveltyIndex(data, spec, 2);
    expect(k2.distance([2, 0, 0])).toBeCloseTo(1, 6); // second nearest is +y
  });

  it("refuses data of the wrong size and embeddings of the wrong width", () => {
    expect(() => createNoveltyIndex(data.subarray(1), spec, 1)).toThrow(/manifest implies/);
    expect(() => createNoveltyIndex(data, spec, 1).distance([1, 0])).toThrow(/expected 3/);
  });

  it("loads float16 references and checks their sha256", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "review-"));
    const bytes = Buffer.from(Uint16Array.from(Array.from(data, toHalf)).buffer);
    await writeFile(path.join(dir, "ref.bin"), bytes);
    const { createHash } = await import("node:crypto");
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    const review = {
      minConfidence: 0.5,
      maxDistance: 0.2,
      k: 1,
      reference: { file: "ref.bin", sha256, ...spec },
    };
    const index = await loadNoveltyIndex(path.join(dir, "m.json"), review);
    expect(index?.distance([0, 3, 0])).toBeCloseTo(0, 3);
    const bad = { ...review, reference: { ...review.reference, sha256: "0".repeat(64) } };
    await expect(loadNoveltyIndex(path.join(dir, "m.json"), bad)).rejects.toThrow(/sha256/);
  });
});

describe("reviewFlags", () => {
  const spec = { minConfidence: 0.6, maxDistance: 0.3 };
  it("flags low confidence and unfamiliar images, each on its own", () => {
    expect(reviewFlags(0.9, 0.1, spec)).toEqual({
      needsReview: false,
      lowConfidence: false,
      unfamiliar: false,
      distance: 0.1,
    });
    expect(reviewFlags(0.5, 0.1, spec)).toMatchObject({
      needsReview: true,
      lowConfidence: true,
      unfamiliar: false,
    });
    expect(reviewFlags(0.9, 0.4, spec)).toMatchObject({
      needsReview: true,
      lowConfidence: false,
      unfamiliar: true,
    });
    expect(reviewFlags(0.9, null, spec)).toMatchObject({ needsReview: false, unfamiliar: false });
    expect(reviewFlags(0.9, 0.9, { minConfidence: 0.5 })).toMatchObject({ needsReview: false });
  });
});
