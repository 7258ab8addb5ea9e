import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  type Classifier as InferenceClassifier,
  loadClassifier,
  ThreadedClassifier,
} from "@garbage/inference";
import { writeTinyModel, writeTinyReviewModel } from "@garbage/onnx";
import sharp from "sharp";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { form, type Harness, json, makeApp, openHarness, png, type TestApp } from "./helpers";

let h: Harness;
let t: TestApp | undefined;
let dir: string;
let classifier: ThreadedClassifier;
let reviewing: InferenceClassifier;

beforeAll(async () => {
  h = await openHarness();
  dir = await mkdtemp(path.join(tmpdir(), "garbage-model-"));
  await writeTinyModel(dir, { classes: ["red", "green", "blue"], seed: 3, manifest: { version: "7" } });
  // What the API process runs: the model in its own thread.
  classifier = await ThreadedClassifier.start({
    model: path.join(dir, "tiny.onnx"),
    provider: "cpu",
    threads: 1,
    maxBatch: 4,
    maxQueue: 8,
    limits: { maxPixels: 10_000 },
  });
  // The same model with reference embeddings that all point at "red": blue is far from its training data.
  await writeTinyReviewModel(dir, {
    name: "reviewing",
    classes: ["red", "green", "blue"],
    seed: 3,
    manifest: { version: "8" },
    references: [[1, 0, 0]],
    maxDistance: 0.5,
  });
  reviewing = await loadClassifier({ model: path.join(dir, "reviewing.onnx"), threads: 1 });
});
afterEach(async () => {
  await t?.dispose();
  t = undefined;
});
afterAll(async () => {
  await classifier?.close();
  await reviewing?.close();
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("POST /v1/classify", () => {
  it("answers 503 when no model is loaded", async () => {
    t = await makeApp(h);
    const res = await t.app.request("/v1/classify", {
      method: "POST",
      body: form([{ name: "image", data: await png(1, 2, 3), filename: "a.png" }]),
    });
    expect(res.status).toBe(503);
    expect(await json(res)).toMatchObject({ code: "model_unavailable" });
  });

  it("classifies a multipart image and a raw body with the real classifier, top-3 first", async () => {
    t = await makeApp(h, { classifier });
    const multipart = await t.app.request("/v1/classify", {
      method: "POST",
      body: form([{ name: "image", data: await png(250, 0, 0), filename: "red.png" }]),
    });
    expect(multipart.status).toBe(200);
    // Where the time went, phase by phase, as Server-Timing (what `npm run bench -- classify` reads).
    const timing = multipart.headers.get("server-timing") ?? "";
    expect(timing.split(", ").map((e) => e.split(";")[0])).toEqual([
      "read",
      "wait",
      "decode",
      "infer",
      "thread",
      "app",
    ]);
    for (const entry of timing.split(", ")) expect(entry).toMatch(/^[a-z]+;dur=\d+\.\d\d$/);
    expect(Number(multipart.headers.get("x-model-batch-size"))).toBe(1);
    const red = await json<{
      label: string;
      confidence: number;
      top: { label: string; confidence: number }[];
    }>(multipart);
    expect(red).toMatchObject({ label: "red", model: { name: "tiny", version: "7" } });
    expect(red.top.map((s) => s.label)).toHaveLength(3);
    expect(red.top[0]).toEqual({ label: "red", confidence: red.confidence });
    expect(red.top.reduce((s, x) => s + x.confidence, 0)).toBeCloseTo(1, 5);

    // A saturated colour is confident, and this model has no reference embeddings to measure novelty with.
    expect(red).toMatchObject({
      needsReview: false,
      review: { lowConfidence: false, unfamiliar: false, distance: null },
    });

    // A browser's boundary has upper-case letters, which must survive the content-type check.
    const boundary = "----WebKitFormBoundaryQx7ZbK2mAa";
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="r.png"\r\nContent-Type: image/png\r\n\r\n`;
    const browser = await t.app.request("/v1/classify", {
      method: "POST",
      headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
      body: Buffer.concat([Buffer.from(head), await png(250, 0, 0), Buffer.from(`\r\n--${boundary}--\r\n`)]),
    });
    expect(browser.status).toBe(200);
    expect(await json(browser)).toMatchObject({ label: "red" });

    const raw = await t.app.request("/v1/classify", {
      method: "POST",
      headers: { "content-type": "image/png" },
      body: new Uint8Array(await png(0, 0, 250)),
    });
    expect(raw.status).toBe(200);
    expect(await json(raw)).toMatchObject({ label: "blue" });
  });

  it("flags low-confidence and unfamiliar images for review, with the novelty distance", async () => {
    t = await makeApp(h, { classifier });
    const classify = async (r: number, g: number, b: number) => {
      const res = await t?.app.request("/v1/classify", {
        method: "POST",
        headers: { "content-type": "image/png" },
        body: new Uint8Array(await png(r, g, b)),
      });
      expect(res?.status).toBe(200);
      return json<{
        confidence: number;
        needsReview: boolean;
        review: { lowConfidence: boolean; unfamiliar: boolean; distance: number | null };
      }>(res as Response);
    };
    // Grey has no hue: near-uniform probabilities, so the model is unsure.
    const grey = await classify(128, 128, 128);
    expect(grey.confidence).toBeLessThan(0.5);
    expect(grey).toMatchObject({
      needsReview: true,
      review: { lowConfidence: true, unfamiliar: false, distance: null },
    });

    await t.dispose();
    t = await makeApp(h, { classifier: reviewing });
    const red = await classify(250, 0, 0);
    expect(red).toMatchObject({ needsReview: false, review: { lowConfidence: false, unfamiliar: false } });
    expect(red.review.distance).toBeGreaterThanOrEqual(0);
    expect(red.review.distance).toBeLessThan(0.5);
    // Blue is as confident as red but far from the (red) training data.
    const blue = await classify(0, 0, 250);
    expect(blue.confidence).toBeGreaterThan(0.5);
    expect(blue).toMatchObject({ needsReview: true, review: { lowConfidence: false, unfamiliar: true } });
    expect(blue.review.distance).toBeGreaterThan(1);
    const [expected] = await reviewing.classify([await png(0, 0, 250)]);
    expect(blue.review.distance).toBe(expected?.ok && expected.review.distance);
  });

  it("maps bad input to 4xx without crashing", async () => {
    t = await makeApp(h, {
      classifier,
      config: { limits: { maxFileBytes: 4_000, maxFiles: 10, maxRequestBytes: 100_000 } },
    });
    const cases: [RequestInit, number, string][] = [
      [{ headers: { "content-type": "image/png" }, body: "plain text" }, 415, "unsupported_format"],
      [{ headers: { "content-type": "application/json" }, body: "{}" }, 415, "unsupported_media_type"],
      [{ body: form([{ name: "other", data: await png(1, 1, 1), filename: "a.png" }]) }, 400, "no_image"],
      [
        { headers: { "content-type": "image/png" }, body: new Uint8Array(await png(1, 1, 1, 200)) },
        413,
        "too_many_pixels",
      ],
      [{ headers: { "content-type": "image/png" }, body: new Uint8Array(5_000) }, 413, "file_too_large"],
      [
        {
          headers: { "content-type": "image/png" },
          body: new Uint8Array((await png(1, 1, 1)).subarray(0, 40)),
        },
        422,
        "corrupt",
      ],
    ];
    for (const [init, status, code] of cases) {
      const res = await t.app.request("/v1/classify", { method: "POST", ...init });
      expect(res.status, code).toBe(status);
      expect(await json(res)).toMatchObject({ code, requestId: expect.any(String) });
    }
  });

  it("answers 503 overloaded with Retry-After while the model queue is full, then classifies again", async () => {
    const busy = await ThreadedClassifier.start({
      model: path.join(dir, "tiny.onnx"),
      provider: "cpu",
      threads: 1,
      maxBatch: 2,
      maxQueue: 2,
    });
    try {
      const app = await makeApp(h, { classifier: busy });
      t = app;
      const send = async () =>
        app.app.request("/v1/classify", {
          method: "POST",
          headers: { "content-type": "image/png" },
          body: new Uint8Array(await png(200, 10, 10)),
        });
      // Two large noisy images keep the queue full for far longer than one small request takes to arrive.
      const big = await Promise.all([noiseJpeg(2400, 1600, 1), noiseJpeg(2400, 1600, 2)]);
      const filling = busy.classify(big);
      const refused = await send();
      expect(refused.status).toBe(503);
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(await json(refused)).toMatchObject({ code: "overloaded", requestId: expect.any(String) });
      expect((await filling).every((o) => o.ok)).toBe(true);
      const ok = await send();
      expect(ok.status).toBe(200);
      expect(await json(ok)).toMatchObject({ label: "red" });
    } finally {
      await busy.close();
    }
  });
});

async function noiseJpeg(width: number, height: number, seed: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  let s = seed;
  for (let i = 0; i < raw.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    raw[i] = s >>> 24;
  }
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}
