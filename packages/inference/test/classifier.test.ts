import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { tinyClassifierWeights, writeTinyModel } from "@garbage/onnx";
import sharp from "sharp";
import { beforeAll, describe, expect, it } from "vitest";
import {
  cudaAvailable,
  loadClassifier,
  ManifestError,
  ProviderUnavailableError,
  softmax,
} from "../src/index.js";

const classes = ["reddish", "greenish", "bluish"];
let dir: string;
let model: string;

const writeModel = (name: string, manifest: Record<string, unknown>) =>
  writeTinyModel(dir, { name, classes, seed: 7, manifest });

const image = (r: number, g: number, b: number, w = 30, h = 20) =>
  sharp({ create: { width: w, height: h, channels: 3, background: { r, g, b } } })
    .png()
    .toBuffer();

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "classifier-"));
  model = await writeModel("tiny", {});
});

describe("loadClassifier + classify", () => {
  it("labels images in batches and keeps failures in place", async () => {
    const clf = await loadClassifier({ model, maxBatch: 2, threads: 1 });
    const inputs = [
      await image(250, 0, 0),
      await image(0, 250, 0),
      Buffer.from("junk"),
      await image(0, 0, 250),
      await image(240, 10, 10),
    ];
    const out = await clf.classify(inputs);
    expect(out.map((o) => (o.ok ? o.label : o.error.code))).toEqual([
      "reddish",
      "greenish",
      "unsupported_format",
      "bluish",
      "reddish",
    ]);
    for (const o of out) {
      if (!o.ok) continue;
      expect(o.top).toHaveLength(3);
      expect(o.top[0]?.confidence).toBeGreaterThanOrEqual(o.top[1]?.confidence as number);
      expect(o.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(o.confidence).toBe(o.top[0]?.confidence);
    }
    await clf.close();
  });

  it("computes what the model defines: softmax(W . normalised channel means + b)", async () => {
    const clf = await loadClassifier({ model });
    const [o] = await clf.classify([await image(200, 100, 30)], { topK: 2 });
    const { weight, bias } = tinyClassifierWeights(3, 7);
    const means = [200, 100, 30].map((v) => (v / 255 - 0.5) / 0.5);
    const logits = [0, 1, 2].map((k) =>
      means.reduce((s, m, c) => s + m * (weight[k * 3 + c] as number), bias[k] as number),
    );
    const expected = softmax(logits);
    expect(o?.ok).toBe(true);
    if (!o?.ok) return;
    expect(o.top).toHaveLength(2);
    o.probabilities.forEach((p, i) => {
      expect(p).toBeCloseTo(expected[i] as number, 4);
    });
    await clf.close();
  });

  it("follows the manifest: channel order and temperature", async () => {
    const bgr = await loadClassifier({
      model: await writeModel("bgr", {
        input: {
          width: 8,
          height: 8,
          channelOrder: "BGR",
          scale: 1 / 255,
          mean: [0.5, 0.5, 0.5],
          std: [0.5, 0.5, 0.5],
        },
      }),
    });
    const [red] = await bgr.classify([await image(250, 0, 0)]);
    expect(red?.ok && red.label).toBe("bluish");
    const plain = await loadClassifier({ model });
    const hot = await loadClassifier({ model: await writeModel("hot", { temperature: 4 }) });
    const [a] = await plain.classify([await image(250, 0, 0)]);
    const [b] = await hot.classify([await image(250, 0, 0)]);
    expect(a?.ok && b?.ok && a.label === b.label).toBe(true);
    expect((b as { confidence: number }).confidence).toBeLessThan((a as { confidence: number }).confidence);
    await Promise.all([bgr.close(), plain.close(), hot.close()]);
  });

  it("test-time augmentation averages the image and its mirror", async () => {
    const raw = Buffer.alloc(16 * 8 * 3);
    for (let i = 0; i < 16 * 8; i++) raw.set(i % 16 < 8 ? [255, 0, 0] : [0, 0, 255], i * 3);
    const half = await sharp(raw, { raw: { width: 16, height: 8, channels: 3 } })
      .png()
      .toBuffer();
    const plain = await loadClassifier({ model });
    const tta = await loadClassifier({ model, tta: true });
    const [p] = await plain.classify([half]);
    const [t] = await tta.classify([half]);
    // The tiny model pools globally, so the mirror gives the same logits and TTA must not change the result.
    if (!p?.ok || !t?.ok) throw new Error("expected predictions");
    t.probabilities.forEach((v, i) => {
      expect(v).toBeCloseTo(p.probabilities[i] as number, 5);
    });
    await Promise.all([plain.close(), tta.close()]);
  });

  it("fails clearly for CUDA without its libraries, a bad manifest, or a checksum mismatch", async () => {
    if (!cudaAvailable()) {
      await expect(loadClassifier({ model, provider: "cuda" })).rejects.toThrow(ProviderUnavailableError);
      await expect(loadClassifier({ model, provider: "cuda" })).rejects.toThrow(/'cuda' is not available/);
    }
    const bad = path.join(dir, "bad.json");
    await writeFile(bad, JSON.stringify({ name: "x", classes: ["a"] }));
    await expect(loadClassifier({ model, manifest: bad })).rejects.toThrow(ManifestError);
    const wrong = await writeModel("wrong", { sha256: "0".repeat(64) });
    await expect(loadClassifier({ model: wrong, verifyChecksum: true })).rejects.toThrow(/sha256/);
  });
});
