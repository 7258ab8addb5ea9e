import { execFile, execFileSync } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import {
  createSession,
  decodeImage,
  loadClassifier,
  readManifest,
  runBatch,
  sha256File,
  tensorSize,
  writeTensor,
} from "@garbage/inference";
import sharp from "sharp";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const PY = "/usr/bin/python3";
const script = path.resolve(import.meta.dirname, "../python/export_torchvision.py");

function hasTorch(): boolean {
  try {
    execFileSync(PY, ["-c", "import torch, torchvision"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

// Saves a randomly initialised torchvision ResNet50 with a 6-class head in the original app's format,
// then (second call) runs it on tensors our preprocessing produced and prints its logits.
const python = `
import sys, json, torch, torchvision, numpy as np
mode, path = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
if mode == "make":
    m = torchvision.models.resnet50()
    head = sys.argv[3]
    m.fc = torch.nn.Linear(2048, 6) if head == "linear" else torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(2048, 6))
    # Non-trivial BN statistics, as a trained network has, so the export must carry them correctly.
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1); mod.running_var.uniform_(0.5, 1.5)
    state = m.state_dict()
    if head != "linear":
        state = {"epoch": 3, "model_state_dict": {"module." + k: v for k, v in state.items()}}
    torch.save(state, path)
else:
    sys.path.insert(0, sys.argv[4])
    from export_torchvision import load_model
    model = load_model(path)
    n = int(sys.argv[5])
    x = torch.from_numpy(np.fromfile(sys.argv[3], dtype=np.float32).reshape(n, 3, 224, 224))
    with torch.no_grad():
        print(json.dumps(model(x).tolist()))
`;

describe("export_torchvision.py: torchvision state dict -> garbage-sort model", () => {
  for (const head of ["linear", "dropout-linear"]) {
    it(`exports a random-init ResNet50 (${head} head) that ONNX Runtime runs like PyTorch`, async (ctx) => {
      if (!hasTorch())
        ctx.skip(
          "python3 with torch + torchvision not installed (apt-get install python3-torch python3-torchvision)",
        );
      const dir = await mkdtemp(path.join(tmpdir(), "export-tv-"));
      const helper = path.join(dir, "helper.py");
      await writeFile(helper, python);
      const pth = path.join(dir, "best_garbage_model.pth");
      await run(PY, [helper, "make", pth, head]);
      const onnx = path.join(dir, "original.onnx");
      await run(PY, [script, "--state-dict", pth, "--out", onnx], { timeout: 240_000 });

      const manifest = await readManifest(onnx.replace(/\.onnx$/, ".json"));
      expect(manifest.sha256).toBe(await sha256File(onnx));
      expect(manifest.input).toMatchObject({
        channelOrder: "RGB",
        width: 224,
        height: 224,
        resize: "stretch",
      });
      expect(manifest.classes).toHaveLength(6);

      const colours = [
        [200, 40, 40],
        [30, 160, 90],
        [240, 240, 235],
      ] as const;
      const images = await Promise.all(
        colours.map(([r, g, b]) =>
          sharp({ create: { width: 300, height: 200, channels: 3, background: { r, g, b } } })
            .composite([
              {
                input: Buffer.from(
                  '<svg width="300" height="200"><circle cx="150" cy="100" r="60" fill="#333"/></svg>',
                ),
              },
            ])
            .jpeg()
            .toBuffer(),
        ),
      );
      const size = tensorSize(manifest.input);
      const batch = new Float32Array(images.length * size);
      for (const [i, img] of images.entries())
        writeTensor(await decodeImage(img, manifest.input), manifest.input, batch, i * size);
      const bin = path.join(dir, "input.bin");
      await writeFile(bin, Buffer.from(batch.buffer));
      const { stdout } = await run(
        PY,
        [helper, "run", pth, bin, path.dirname(script), String(images.length)],
        { maxBuffer: 1 << 20 },
      );
      const torchLogits = JSON.parse(stdout) as number[][];

      const session = await createSession(onnx, { threads: 2 });
      const { data } = await runBatch(session, batch, [images.length, 3, 224, 224]);
      await session.release();
      const scale = Math.max(...torchLogits.flat().map(Math.abs));
      torchLogits.forEach((row, i) => {
        row.forEach((v, c) => {
          // Relative to the largest logit: random networks produce large activations.
          expect(Math.abs((data[i * 6 + c] as number) - v) / scale).toBeLessThan(1e-4);
        });
      });
      const clf = await loadClassifier({ model: onnx });
      const out = await clf.classify(images);
      await clf.close();
      out.forEach((o, i) => {
        const row = torchLogits[i] as number[];
        expect(o.ok && o.label).toBe(manifest.classes[row.indexOf(Math.max(...row))]);
      });
    }, 300_000);
  }
});
