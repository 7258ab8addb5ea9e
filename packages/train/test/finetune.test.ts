import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { listImageFolder, readManifest } from "@garbage/inference";
import { writeTinyModel } from "@garbage/onnx";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { compareWithTorch, valLogits } from "../src/finalize.js";
import { runPhase2, torchAvailable } from "../src/phase2.js";
import { writeValTensors } from "../src/val-tensors.js";

// The tiny model maps red/green/blue to its classes 0/1/2; naming them in another order makes phase one
// wrong on every image, so fine-tuning must change the weights to win on val.
const classes = ["green", "blue", "red"];
const colours: Record<string, [number, number, number]> = {
  red: [220, 40, 40],
  green: [40, 200, 60],
  blue: [40, 60, 220],
};

async function imageFolder(root: string, perClass: number, seed: number) {
  for (const [c, [r, g, b]] of Object.entries(colours)) {
    await mkdir(path.join(root, c), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const jitter = ((i * 37 + seed * 11) % 40) - 20;
      const img = sharp({
        create: { width: 40, height: 30, channels: 3, background: { r: r + jitter, g: g - jitter, b } },
      });
      await writeFile(path.join(root, c, `${c}${i}.jpg`), await img.jpeg().toBuffer());
    }
  }
}

describe("phase 2 (finetune.py) and its export check", () => {
  it("fine-tunes our ONNX graph in PyTorch, writes it back, and ONNX Runtime agrees on val", async (ctx) => {
    if (!(await torchAvailable())) ctx.skip("python3 with torch, torchvision and onnx not installed");
    const dir = await mkdtemp(path.join(tmpdir(), "finetune-"));
    await imageFolder(path.join(dir, "train"), 6, 1);
    await imageFolder(path.join(dir, "val"), 3, 2);
    const model = await writeTinyModel(dir, { name: "phase1", classes, size: 8, seed: 5 });
    const spec = (await readManifest(model.replace(/\.onnx$/, ".json"))).input;
    const val = await listImageFolder(path.join(dir, "val"), classes);
    const tensors = await writeValTensors(val, spec, dir);
    const out = path.join(dir, "phase2.onnx");
    const report = await runPhase2({
      model,
      out,
      train: path.join(dir, "train"),
      valTensors: tensors.file,
      valList: tensors.list,
      // The tiny model's only trainable parameters are its head ("head.*").
      args: [
        "--views",
        "2",
        "--epochs",
        "6",
        "--optimizer",
        "sgd",
        "--head-lr",
        "1",
        "--warmup",
        "0",
        "--batch",
        "4",
        "--seed",
        "1",
      ],
    });
    expect(report.history[0]?.epoch).toBe(0);
    expect(report.probabilities).toHaveLength(val.length);
    const { logits, k } = await valLogits(out, spec, tensors.data, val.length, 1);
    const check = compareWithTorch(logits, k, report.probabilities);
    expect(check.top1Mismatches).toBe(0);
    expect(check.maxAbsDiff).toBeLessThan(1e-5);
    expect(report.history[0]?.valAccuracy).toBe(0);
    expect(report.bestEpoch).toBeGreaterThan(0);
    expect(report.valAccuracy).toBe(1);
    // So the check is not vacuous: the phase-one weights disagree with what PyTorch trained.
    const before = await valLogits(model, spec, tensors.data, val.length, 1);
    expect(compareWithTorch(before.logits, k, report.probabilities).top1Mismatches).toBe(val.length);
  }, 180_000);
});
