import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { floatToHalf, writeTinyReviewModel } from "../src/index";

describe("floatToHalf", () => {
  it("encodes normal values, rounds to nearest and carries into the exponent", () => {
    expect(floatToHalf(1)).toBe(0x3c00);
    expect(floatToHalf(-2)).toBe(0xc000);
    expect(floatToHalf(0.5)).toBe(0x3800);
    expect(floatToHalf(1 / 3)).toBe(0x3555);
    expect(floatToHalf(0)).toBe(0);
    // Just below 2: the mantissa rounds up to 1024 and must become 2.0, not a garbled exponent.
    expect(floatToHalf(1.99996)).toBe(0x4000);
  });
});

describe("writeTinyReviewModel", () => {
  it("writes zero mean, identity projection and normalised references, and names them in the manifest", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "tiny-review-"));
    try {
      await writeTinyReviewModel(dir, { classes: ["a", "b"], references: [[3, 4]], maxDistance: 0.4 });
      const manifest = JSON.parse(await readFile(path.join(dir, "tiny.json"), "utf8"));
      expect(manifest.output).toEqual({ name: "logits", kind: "logits", embedding: "logits" });
      expect(manifest.review).toMatchObject({
        minConfidence: 0.5,
        maxDistance: 0.4,
        k: 1,
        reference: { file: "tiny.references.bin", embedding: 2, dims: 2, count: 1 },
      });
      const bytes = await readFile(path.join(dir, "tiny.references.bin"));
      const halves = Array.from(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2));
      expect(halves).toEqual([0, 0, 0x3c00, 0, 0, 0x3c00, floatToHalf(0.6), floatToHalf(0.8)]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
