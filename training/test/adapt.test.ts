import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { loadClassifier, manifestPathFor, manifestSchema, sha256File } from "@garbage/inference";
import * as ort from "onnxruntime-node";
import sharp from "sharp";
import { beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../src/fetch-resnet.js";
import { PYTHON, PYTHON_DIR, torchAvailable } from "../src/python.js";

const exec = promisify(execFile);
const SHIPPED = path.join(REPO_ROOT, "models/garbage-resnet50.onnx");
const CLI = path.join(REPO_ROOT, "training/src/adapt/cli.ts");
const TSX = path.join(REPO_ROOT, "node_modules/.bin/tsx");

/** Photos of one flat-coloured item per class on a given surface. */
async function photos(
  root: string,
  classes: Record<string, [number, number, number]>,
  surface: number,
  n: number,
) {
  for (const [label, [r, g, b]] of Object.entries(classes)) {
    await mkdir(path.join(root, label), { recursive: true });
    for (let i = 0; i < n; i++) {
      const item = await sharp({
        create: { width: 60 + i * 7, height: 50, channels: 3, background: { r, g, b } },
      })
        .png()
        .toBuffer();
      const img = await sharp({
        create: {
          width: 200,
          height: 150,
          channels: 3,
          background: { r: surface, g: surface, b: surface - 10 },
        },
      })
        .composite([{ input: item, left: 20 + i * 9, top: 40 + i * 5 }])
        .jpeg()
        .toBuffer();
      await writeFile(path.join(root, label, `${label}-${i}.jpg`), img);
    }
  }
}

const adapt = (args: string[]) =>
  exec(TSX, [CLI, ...args], { cwd: REPO_ROOT, maxBuffer: 1 << 24 }).then(
    (r) => ({ code: 0, stderr: r.stderr }),
    (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
  );

describe.skipIf(!torchAvailable())("npm run adapt (Debian's PyTorch)", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "adapt-"));
    // A site with photos of three classes only, on a dark floor; replay photos of every class on a board.
    await photos(
      path.join(dir, "site"),
      { glass: [40, 160, 60], metal: [120, 120, 130], paper: [230, 230, 120] },
      60,
      3,
    );
    await photos(
      path.join(dir, "replay"),
      {
        cardboard: [150, 100, 50],
        glass: [40, 160, 60],
        metal: [120, 120, 130],
        paper: [230, 230, 120],
        plastic: [40, 60, 220],
        trash: [200, 30, 30],
      },
      235,
      2,
    );
  });

  it("loads a served ONNX model into PyTorch with onnxruntime's outputs (BatchNorm folded)", async () => {
    const out = path.join(dir, "parity.bin");
    await exec(PYTHON, [
      "-c",
      `import sys, torch; sys.path.insert(0, ${JSON.stringify(PYTHON_DIR)}); from folded import load_served
m = load_served(${JSON.stringify(SHIPPED)}); g = torch.Generator().manual_seed(0)
x = torch.randn(2, 3, 224, 224, generator=g) * 60
with torch.no_grad(): lo, em = m(x)
import numpy as np; np.concatenate([x.numpy().ravel(), lo.numpy().ravel(), em.numpy().ravel()]).astype('<f4').tofile(${JSON.stringify(out)})`,
    ]);
    const all = new Float32Array((await readFile(out)).buffer.slice(0));
    const n = 2 * 3 * 224 * 224;
    const session = await ort.InferenceSession.create(SHIPPED);
    const res = await session.run({ input: new ort.Tensor("float32", all.slice(0, n), [2, 3, 224, 224]) });
    const logits = res.logits?.data as Float32Array;
    const emb = res.embedding?.data as Float32Array;
    const worst = (xs: Float32Array, off: number) =>
      Math.max(...xs.map((v, i) => Math.abs(v - (all[off + i] as number))));
    expect(worst(logits, n)).toBeLessThan(1e-3);
    expect(worst(emb, n + 12)).toBeLessThan(1e-3);
  });

  it("fine-tunes on a site's photos and writes a complete served model", async () => {
    const out = path.join(dir, "models", "plant-1.onnx");
    const { code, stderr } = await adapt([
      "--data",
      path.join(dir, "site"),
      "--out",
      out,
      "--replay",
      path.join(dir, "replay"),
      "--replay-images",
      "12",
      "--steps",
      "4",
      "--views",
      "2",
      "--cv-folds",
      "2",
      "--sites",
      "plant-1",
    ]);
    expect(code, stderr).toBe(0);
    const manifest = manifestSchema.parse(JSON.parse(await readFile(manifestPathFor(out), "utf8")));
    expect(manifest.sha256).toBe(await sha256File(out));
    expect(manifest.classes).toEqual(["cardboard", "glass", "metal", "paper", "plastic", "trash"]);
    expect(manifest.site).toMatchObject({
      sites: ["plant-1"],
      images: 9,
      perClass: { glass: 3, metal: 3, paper: 3 },
    });
    expect(manifest.metrics[0]?.dataset).toMatch(/2-fold cross-validation/);
    expect(manifest.metrics[0]?.n).toBe(9);
    // The site's photos sit among the reference embeddings beside the replayed ones.
    expect(manifest.review?.reference?.count).toBe(9 + 12);
    const int8 = manifestSchema.parse(
      JSON.parse(await readFile(manifestPathFor(out.replace(/\.onnx$/, "-int8.onnx")), "utf8")),
    );
    expect(int8.name).toBe(`${manifest.name}-int8`);
    for (const model of [out, out.replace(/\.onnx$/, "-int8.onnx")]) {
      const clf = await loadClassifier({ model, threads: 1 });
      try {
        const [r] = await clf.classify([path.join(dir, "site/glass/glass-0.jpg")]);
        expect(r?.ok).toBe(true);
      } finally {
        await clf.close();
      }
    }
  }, 300_000);

  it("refuses bad usage (exit 2) and a class folder the model does not know (exit 1)", async () => {
    expect((await adapt(["--data", path.join(dir, "site")])).code).toBe(2);
    await mkdir(path.join(dir, "odd/bottles"), { recursive: true });
    const res = await adapt(["--data", path.join(dir, "odd"), "--out", path.join(dir, "odd.onnx")]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/'bottles', not one of the model's classes/);
  });
});
