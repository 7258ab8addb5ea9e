import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { writeTinyModel, writeTinyReviewModel } from "@garbage/onnx";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadClassifier, QueueFullError, ThreadedClassifier } from "../src/index.js";

const classes = ["reddish", "greenish", "bluish"];
let dir: string;
let model: string;

const image = (r: number, g: number, b: number) =>
  sharp({ create: { width: 30, height: 20, channels: 3, background: { r, g, b } } })
    .png()
    .toBuffer();

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "threaded-"));
  model = await writeTinyModel(dir, { name: "tiny", classes, seed: 7, manifest: {} });
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("ThreadedClassifier", () => {
  it("answers concurrent callers in their own order, failures in place, through the model thread", async () => {
    const clf = await ThreadedClassifier.start({
      model,
      provider: "cpu",
      threads: 1,
      maxBatch: 4,
      maxQueue: 16,
    });
    try {
      expect(clf.manifest.classes).toEqual(classes);
      const colours: [number, number, number][] = [
        [250, 0, 0],
        [0, 250, 0],
        [0, 0, 250],
        [240, 20, 10],
        [10, 240, 30],
      ];
      const inputs = await Promise.all(colours.map((c) => image(...c)));
      const answers = await Promise.all([
        ...inputs.map((img) => clf.classify([img])),
        clf.classify([Buffer.from("not an image")]),
      ]);
      expect(answers.slice(0, 5).map(([o]) => (o?.ok ? o.label : o?.error.code))).toEqual([
        "reddish",
        "greenish",
        "bluish",
        "reddish",
        "greenish",
      ]);
      expect(answers[5]?.[0]).toMatchObject({ ok: false, error: { code: "unsupported_format" } });
      expect(clf.pending).toBe(0);
      // Each answer says where its time went; its batch held at most maxBatch images.
      for (const [o] of answers.slice(0, 5)) {
        const t = o?.timings;
        expect(t?.batchSize).toBeGreaterThanOrEqual(1);
        expect(t?.batchSize).toBeLessThanOrEqual(4);
        for (const ms of [t?.waitMs, t?.decodeMs, t?.inferenceMs, t?.threadMs]) {
          expect(ms).toBeGreaterThanOrEqual(0);
        }
        expect(t?.inferenceMs).toBeGreaterThan(0);
      }
    } finally {
      await clf.close();
    }
  });

  it("refuses what does not fit the queue at once, without queueing any of it", async () => {
    const clf = await ThreadedClassifier.start({
      model,
      provider: "cpu",
      threads: 1,
      maxBatch: 2,
      maxQueue: 3,
    });
    try {
      const red = await image(250, 0, 0);
      const first = clf.classify([red, red]);
      expect(clf.pending).toBe(2);
      const refused = clf.classify([red, red]);
      await expect(refused).rejects.toBeInstanceOf(QueueFullError);
      await expect(refused).rejects.toMatchObject({ code: "overloaded", retryAfterS: expect.any(Number) });
      expect(clf.pending).toBe(2);
      const fits = clf.classify([red]);
      expect((await first).every((o) => o.ok)).toBe(true);
      expect((await fits)[0]).toMatchObject({ ok: true, label: "reddish" });
      expect(clf.pending).toBe(0);
    } finally {
      await clf.close();
    }
  });

  it("carries the model's embedding through the thread, and null for a model without one", async () => {
    const withEmbedding = await writeTinyReviewModel(dir, {
      name: "review",
      classes,
      size: 8,
      seed: 7,
      manifest: { version: "t" },
      references: [[1, 0, 0]],
      maxDistance: 0.5,
    });
    const img = await image(250, 0, 0);
    const direct = await loadClassifier({ model: withEmbedding, threads: 1 });
    const [expected] = await direct.classify([img]);
    await direct.close();
    if (!expected?.ok) throw new Error("the direct classifier failed");
    expect(expected.embedding).toBeInstanceOf(Float32Array);
    expect(expected.embedding).toHaveLength(classes.length);

    for (const [file, want] of [
      [withEmbedding, expected.embedding],
      [model, null],
    ] as const) {
      const clf = await ThreadedClassifier.start({
        model: file,
        provider: "cpu",
        threads: 1,
        maxBatch: 2,
        maxQueue: 4,
      });
      try {
        const [a, b] = await clf.classify([img, img]);
        for (const o of [a, b]) {
          if (!o?.ok) throw new Error("classification failed");
          expect(o.embedding).toEqual(want);
        }
      } finally {
        await clf.close();
      }
    }
  });
});
