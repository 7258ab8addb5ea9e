import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { decodeImage, type InputSpec, inputSpecSchema, tensorSize, writeTensor } from "../src/index.js";
import { referenceResize, referenceTensor } from "./reference-transform.js";

// Tolerance, in 0..255 pixel units, between libvips' resampler and the PIL-style reference: libvips uses
// JPEG shrink-on-load and fixed-point arithmetic, so values differ slightly but never systematically.
const MEAN_TOL = 0.5;
const P99_TOL = 1.5;
const MAX_TOL = 8;

const shared = path.resolve(import.meta.dirname, "../../../../shared/datasets/trashnet/val");
const caffe: InputSpec = inputSpecSchema.parse({
  width: 224,
  height: 224,
  channelOrder: "BGR",
  scale: 1,
  mean: [103.939, 116.779, 123.68],
});
const torch: InputSpec = inputSpecSchema.parse({
  width: 224,
  height: 224,
  channelOrder: "RGB",
  scale: 1 / 255,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
});

async function compare(input: Buffer | string, spec: InputSpec) {
  const { data, info } = await sharp(input)
    .rotate()
    .toColourspace("srgb")
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const ref = referenceTensor(
    referenceResize({ data, width: info.width, height: info.height }, spec.width, spec.height),
    spec.width,
    spec.height,
    spec,
  );
  const ours = new Float32Array(tensorSize(spec));
  writeTensor(await decodeImage(input, spec), spec, ours);
  // Compare in pixel units so one tolerance serves both normalisations.
  const unit = (c: number) => (spec.std[c] as number) / spec.scale;
  const plane = spec.width * spec.height;
  const diffs = Array.from(
    ours,
    (v, i) => Math.abs(v - (ref[i] as number)) * unit(Math.floor(i / plane)),
  ).sort((a, b) => a - b);
  return {
    mean: diffs.reduce((a, b) => a + b, 0) / diffs.length,
    p99: diffs[Math.floor(diffs.length * 0.99)] as number,
    max: diffs[diffs.length - 1] as number,
  };
}

async function gradient(width: number, height: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      raw[i] = (x * 255) / width;
      raw[i + 1] = (y * 255) / height;
      raw[i + 2] = ((x ^ y) & 32) * 4; // hard edges stress the antialiasing filter
    }
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

describe("preprocessing parity with a reference implementation", () => {
  for (const [name, spec] of [
    ["caffe BGR", caffe],
    ["torchvision RGB /255 mean/std", torch],
  ] as const) {
    it(`matches on a synthetic 500x300 PNG (${name})`, async () => {
      const d = await compare(await gradient(500, 300), spec);
      expect(d.mean).toBeLessThan(MEAN_TOL);
      expect(d.p99).toBeLessThan(P99_TOL);
      expect(d.max).toBeLessThan(MAX_TOL);
    });
  }

  it("matches on TrashNet photos (JPEG shrink-on-load path)", async (ctx) => {
    if (!existsSync(shared)) ctx.skip(`TrashNet not found at ${shared}; parity on real photos skipped`);
    for (const cls of ["cardboard", "glass", "trash"]) {
      const file = path.join(shared, cls, readdirSync(path.join(shared, cls)).sort()[0] as string);
      const d = await compare(file, caffe);
      expect(d.mean, file).toBeLessThan(MEAN_TOL);
      expect(d.p99, file).toBeLessThan(P99_TOL);
      expect(d.max, file).toBeLessThan(MAX_TOL);
    }
  });

  it("lays out channels and normalisation exactly when no resize is needed", async () => {
    const spec = inputSpecSchema.parse({ ...caffe, width: 2, height: 1 });
    const png = await sharp(Buffer.from([255, 0, 10, 0, 128, 255]), {
      raw: { width: 2, height: 1, channels: 3 },
    })
      .png()
      .toBuffer();
    const out = new Float32Array(6);
    writeTensor(await decodeImage(png, spec), spec, out);
    // BGR planes: [B(px0), B(px1), G(px0), G(px1), R(px0), R(px1)] minus caffe means.
    const expected = [10 - 103.939, 255 - 103.939, 0 - 116.779, 128 - 116.779, 255 - 123.68, 0 - 123.68];
    expected.forEach((v, i) => {
      expect(out[i]).toBeCloseTo(v, 3);
    });
  });
});
