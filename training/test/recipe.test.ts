import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { createSession, listImageFolder, loadClassifier, runOutputs, sha256File } from "@garbage/inference";
import sharp from "sharp";
import { beforeAll, describe, expect, it } from "vitest";
import { embedImages, kerasInputSpec } from "../src/embed.js";
import { PYTHON, PYTHON_DIR, runPython, torchAvailable } from "../src/python.js";
import { quantizeModel } from "../src/quantize.js";

const exec = promisify(execFile);
const classes = ["cardboard", "glass", "metal", "paper", "plastic", "trash"];
const colours: [number, number, number][] = [
  [150, 100, 50],
  [40, 160, 60],
  [120, 120, 130],
  [230, 230, 120],
  [40, 60, 220],
  [200, 30, 30],
];
const SIZE = 64;
const spec = kerasInputSpec(SIZE);

/** TrashNet-like photos: a coloured item on a near-white board. */
async function boardPhotos(root: string, perClass: number, seed: number) {
  for (const [k, c] of classes.entries()) {
    await mkdir(path.join(root, c), { recursive: true });
    const [r, g, b] = colours[k] as [number, number, number];
    for (let i = 0; i < perClass; i++) {
      const w = 40 + ((i * 13 + seed) % 30);
      const item = await sharp({ create: { width: w, height: 50, channels: 3, background: { r, g, b } } })
        .png()
        .toBuffer();
      const img = sharp({
        create: { width: 160, height: 120, channels: 3, background: { r: 235, g: 235, b: 230 } },
      })
        .composite([{ input: item, left: 30 + ((i * 7) % 40), top: 30 }])
        .jpeg();
      await writeFile(path.join(root, c, `${c}${i}.jpg`), await img.toBuffer());
    }
  }
}

const hasTorch = torchAvailable();
let dir = "";

describe.skipIf(!hasTorch)(
  "the training recipe on a tiny synthetic set (random init, procedural backgrounds)",
  () => {
    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), "recipe-"));
      await boardPhotos(path.join(dir, "train"), 3, 1);
      await boardPhotos(path.join(dir, "val"), 2, 2);
    });

    it("recovers an item's mask from the board", async () => {
      const { stdout } = await exec(PYTHON, [
        "-c",
        `import sys; sys.path.insert(0, ${JSON.stringify(PYTHON_DIR)})
from PIL import Image
import numpy as np
from masks import board_item
img = Image.new("RGB", (160, 120), (235, 235, 230))
img.paste((200, 30, 30), (50, 30, 110, 90))
item = board_item(img)
a = np.asarray(item.getchannel("A")) > 128
print(item.size[0], item.size[1], int(a.sum()))`,
      ]);
      const [w, h, inside] = stdout.trim().split(" ").map(Number);
      // A 60x60 square, within the 1-2 px of feathering.
      expect(Math.abs((w as number) - 60)).toBeLessThanOrEqual(4);
      expect(Math.abs((h as number) - 60)).toBeLessThanOrEqual(4);
      expect(Math.abs((inside as number) - 3600)).toBeLessThan(300);
    });

    it("trains, exports with BatchNorm folded and float16 weights, and the served path agrees with PyTorch", async () => {
      const run = path.join(dir, "run");
      await runPython(
        "train.py",
        [
          ...["--train", path.join(dir, "train"), "--val", path.join(dir, "val"), "--keras", "unused"],
          ...[
            "--backgrounds",
            "none",
            "--out",
            run,
            "--no-pretrained",
            "--epochs",
            "2",
            "--val-every",
            "4",
            "--final-epochs",
            "2",
            "--final-lr",
            "0.1",
            "--average",
            "--average-every",
            "1",
          ],
          ...["--steps", "2", "--batch", "4", "--size", "48", "--final-size", String(SIZE), "--threads", "2"],
        ],
        { quiet: true },
      );
      const summary = JSON.parse(await readFile(path.join(run, "train.json"), "utf8"));
      type Epoch = { size: number; lr: number; valAccuracy?: number };
      const history: Epoch[] = summary.history;
      expect(history.map((h) => h.size)).toEqual([48, 48, SIZE, SIZE]);
      // A cosine over the two 48-px epochs (too few steps for a warm-up), then --final-lr restarts the
      // serving-size epochs at a tenth of the learning rate (0.004 by default), with their own cosine.
      expect(history.map((h) => h.lr)).toEqual([0.004, 0.002, 0.0004, 0.0002]);
      // --val-every 4 skips epoch 1 but never the last epoch at --size, nor a serving-size epoch.
      expect(history.map((h) => h.valAccuracy !== undefined)).toEqual([false, true, true, true]);
      // --average: one snapshot per step of the serving-size epochs after the first; the live weights are
      // kept beside the averaged ones that model.pt (and so the export below) carries.
      expect(summary.average.snapshots).toBe(2);
      const { stdout: moved } = await exec(PYTHON, [
        "-c",
        `import torch
live = torch.load(${JSON.stringify(path.join(run, "model-live.pt"))})
avg = torch.load(${JSON.stringify(path.join(run, "model.pt"))})
print(max((live[k].float() - avg[k].float()).abs().max().item() for k in live if live[k].is_floating_point()))`,
      ]);
      expect(Number(moved)).toBeGreaterThan(0);
      const model = path.join(run, "model.onnx");
      const full = path.join(run, "model-fp32.onnx");
      const check = path.join(run, "check.f32");
      await runPython(
        "export.py",
        [
          "--checkpoint",
          path.join(run, "model.pt"),
          "--out",
          model,
          "--float32-out",
          full,
          "--size",
          String(SIZE),
          "--check-out",
          check,
        ],
        { quiet: true },
      );
      const raw = new Float32Array((await readFile(check)).buffer.slice(0));
      const n = 4;
      const inputLen = n * 3 * SIZE * SIZE;
      const x = raw.subarray(0, inputLen);
      const torchLogits = raw.subarray(inputLen, inputLen + n * 6);
      const torchEmb = raw.subarray(inputLen + n * 6);
      for (const [file, tol] of [
        [full, 1e-4],
        [model, 2e-2],
      ] as const) {
        const session = await createSession(file);
        const [logits, emb] = await runOutputs(session, x, [n, 3, SIZE, SIZE], "input", [
          "logits",
          "embedding",
        ]);
        const scale = Math.max(...Array.from(torchEmb, Math.abs), 1e-6);
        const maxDiff = Math.max(
          ...Array.from(emb?.data ?? [], (v, i) => Math.abs(v - (torchEmb[i] as number))),
        );
        expect(maxDiff / scale, `${path.basename(file)} embedding`).toBeLessThan(tol);
        const lscale = Math.max(...Array.from(torchLogits, Math.abs), 1e-6);
        const ldiff = Math.max(
          ...Array.from(logits?.data ?? [], (v, i) => Math.abs(v - (torchLogits[i] as number))),
        );
        expect(ldiff / lscale, `${path.basename(file)} logits`).toBeLessThan(tol);
        await session.release();
      }
      // Half the bytes: every large initializer is stored as float16.
      const { size: halfSize } = await import("node:fs/promises").then((fs) => fs.stat(model));
      const { size: fullSize } = await import("node:fs/promises").then((fs) => fs.stat(full));
      expect(halfSize / fullSize).toBeLessThan(0.55);

      // Calibrate on the served path's outputs, then the classifier flags by the fitted thresholds.
      const emb = path.join(run, "emb");
      await mkdir(emb);
      const val = await listImageFolder(path.join(dir, "val"), classes);
      const train = await listImageFolder(path.join(dir, "train"), classes);
      await embedImages({ model, spec, images: val, out: emb, name: "val" });
      await embedImages({ model, spec, images: train, out: emb, name: "train" });
      const ref = path.join(run, "m.ref.bin");
      await runPython(
        "calibrate.py",
        [
          "--embeddings",
          emb,
          "--reference",
          "train",
          "--out-ref",
          ref,
          "--out-json",
          path.join(run, "c.json"),
          "--dims",
          "8",
          "--k",
          "2",
        ],
        { quiet: true },
      );
      const c = JSON.parse(await readFile(path.join(run, "c.json"), "utf8"));
      expect(c.review.reference).toMatchObject({ embedding: 2048, dims: 8, count: 18 });
      expect(c.reviewSelection.valFlaggedRate).toBeLessThanOrEqual(0.12);
      await writeFile(
        path.join(run, "model.json"),
        JSON.stringify({
          name: "tiny-recipe",
          version: "test",
          file: "model.onnx",
          sha256: await sha256File(model),
          classes,
          input: spec,
          output: { name: "logits", kind: "logits", embedding: "embedding" },
          temperature: c.temperature,
          review: c.review,
        }),
      );
      const classifier = await loadClassifier({ model });
      const out = await classifier.classify(val.map((v) => v.file));
      await classifier.close();
      const flagged = out.filter((o) => o.ok && o.needsReview).length;
      expect(flagged / out.length).toBeCloseTo(c.reviewSelection.valFlaggedRate, 6);
      for (const o of out) if (o.ok) expect(o.review.distance).not.toBeNull();
    });

    it("quantizes the exported model to QDQ int8 that onnxruntime runs, close to the float model", async () => {
      const run = path.join(dir, "run");
      const int8 = path.join(run, "model-int8.onnx");
      const images = await listImageFolder(path.join(dir, "train"), classes);
      const q = await quantizeModel({ model: path.join(run, "model.onnx"), out: int8, spec, images });
      expect(q).toMatchObject({ tensors: expect.any(Number), images: images.length });
      const graph = await readFile(int8);
      expect(graph.includes(Buffer.from("QuantizeLinear"))).toBe(true);
      // int8 weights: about a quarter of the float32 export.
      const { size: intSize } = await stat(int8);
      const { size: fullSize } = await stat(path.join(run, "model-fp32.onnx"));
      expect(intSize / fullSize).toBeLessThan(0.35);
      const raw = new Float32Array((await readFile(path.join(run, "check.f32"))).buffer.slice(0));
      const x = raw.subarray(0, 4 * 3 * SIZE * SIZE);
      const embed = async (file: string) => {
        const session = await createSession(file);
        const [e] = await runOutputs(session, x, [4, 3, SIZE, SIZE], "input", ["embedding"]);
        await session.release();
        return e?.data.slice() ?? new Float32Array();
      };
      const [a, b] = [await embed(path.join(run, "model-fp32.onnx")), await embed(int8)];
      const width = a.length / 4;
      for (let i = 0; i < 4; i++) {
        const u = a.subarray(i * width, (i + 1) * width);
        const v = b.subarray(i * width, (i + 1) * width);
        let dot = 0;
        let nu = 0;
        let nv = 0;
        for (let j = 0; j < width; j++) {
          dot += (u[j] as number) * (v[j] as number);
          nu += (u[j] as number) ** 2;
          nv += (v[j] as number) ** 2;
        }
        expect(dot / Math.sqrt(nu * nv), `image ${i} embedding cosine`).toBeGreaterThan(0.98);
      }
    });
  },
);

if (!hasTorch)
  console.warn("SKIPPING the recipe test: python3-torch, python3-onnx, python3-scipy or python3-pil missing");
