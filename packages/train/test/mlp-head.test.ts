import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { prng } from "@garbage/onnx";
import { describe, expect, it } from "vitest";
import { argmaxRows, logitsOf } from "../src/head-selection.js";
import { fitMlpHead, residualLogits } from "../src/mlp-head.js";
import { torchAvailable } from "../src/phase2.js";
import { type Dataset, fitSoftmax } from "../src/softmax-regression.js";

// Two quadrant classes (the sign of x0 * x1) plus two noise features: no linear head does better than
// chance, so only a working ReLU branch, read back in the right layout, can classify them.
function quadrants(n: number, seed: number): Dataset {
  const rand = prng(seed);
  const d = 4;
  const x = new Float32Array(n * d);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) x[i * d + j] = rand() * 2 - 1;
    y[i] = (x[i * d] as number) * (x[i * d + 1] as number) > 0 ? 1 : 0;
  }
  return { x, y, n, d, k: 2 };
}

const accuracy = (logits: Float64Array, data: Dataset) =>
  argmaxRows(logits, data.k).filter((p, i) => p === data.y[i]).length / data.n;

describe("mlp_head.py: the residual ReLU branch of the head", () => {
  it("learns what the linear head cannot, and its weights read back as [H,D],[H],[K,H],[K]", async (ctx) => {
    if (!(await torchAvailable())) ctx.skip("python3 with torch, torchvision and onnx not installed");
    const train = quadrants(600, 1);
    const val = quadrants(200, 2);
    const linear = fitSoftmax(train, { lambda: 1e-3 });
    const linearOnly = logitsOf(linear, val.x, val.n, val.d);
    expect(accuracy(linearOnly, val)).toBeLessThan(0.7);

    const dir = await mkdtemp(path.join(tmpdir(), "mlp-head-"));
    const args = ["--hidden", "32", "--epochs", "80", "--batch", "32", "--lr", "0.02"];
    const noRegularisation = [
      "--input-dropout",
      "0",
      "--dropout",
      "0",
      "--label-smoothing",
      "0",
      "--weight-decay",
      "0",
    ];
    const mlp = await fitMlpHead(train, val, {
      dir,
      seed: 3,
      threads: 1,
      args: [...args, ...noRegularisation],
    });
    expect(mlp.first.weight).toHaveLength(32 * 4);
    expect(mlp.second.weight).toHaveLength(2 * 32);
    const both = residualLogits(linear, mlp, val.x, val.n, val.d);
    expect(accuracy(both, val)).toBeGreaterThan(0.9);
    // PyTorch's own val accuracy (branch alone) agrees with the branch as TypeScript reads it back.
    const noLinear = { weight: new Float32Array(2 * 4), bias: new Float32Array(2) };
    expect(accuracy(residualLogits(noLinear, mlp, val.x, val.n, val.d), val)).toBeCloseTo(
      mlp.report.valAccuracy,
      5,
    );

    const again = await fitMlpHead(train, val, {
      dir,
      seed: 3,
      threads: 1,
      args: [...args, ...noRegularisation],
    });
    expect(Array.from(again.second.weight)).toEqual(Array.from(mlp.second.weight));
  }, 60_000);
});
