import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../../..");
const val = path.resolve(root, "../shared/datasets/trashnet/val");

// The manifest's metrics are what the training command measured through the serving path; this re-measures
// them with `eval`, so a change to decoding, resizing or the tensor layout cannot silently cost accuracy.
async function evalShipped(model: "fp32" | "int8") {
  const { stdout } = await run(
    process.execPath,
    [
      "--import",
      "tsx",
      path.join(root, "apps/cli/src/main.ts"),
      "eval",
      "--data",
      val,
      "--json",
      "--model",
      model,
    ],
    { cwd: root, maxBuffer: 64 * 1024 * 1024 },
  );
  const m = JSON.parse(stdout);
  const file = model === "fp32" ? "garbage-resnet50.json" : "garbage-resnet50-int8.json";
  const manifest = JSON.parse(await readFile(path.join(root, "models", file), "utf8"));
  const recorded = manifest.metrics.find((r: { dataset: string }) => r.dataset.endsWith("trashnet/val"));
  expect(m.n).toBe(recorded.n);
  expect(m.accuracy, `${model} accuracy`).toBeCloseTo(recorded.accuracy, 9);
  expect(m.macroF1).toBeCloseTo(recorded.macroF1, 9);
  expect(m.review.flagged).toBe(recorded.review.flagged);
  return m;
}

describe("the shipped models on TrashNet val", () => {
  it("reproduce their manifests' metrics and meet the model-quality targets", async (ctx) => {
    if (!existsSync(val)) ctx.skip(`TrashNet val images not found at ${val}`);
    const float = await evalShipped("fp32");
    // Issue 8's targets on val: at least 93 % (v6: 353 of 379, one image above it; docs/model.md), at most
    // 15 % flagged, the unflagged part at least 90 % right.
    expect(float.accuracy).toBeGreaterThanOrEqual(0.93);
    expect(float.review.flaggedRate).toBeLessThanOrEqual(0.15);
    expect(float.review.confidentAccuracy).toBeGreaterThanOrEqual(0.9);
    // The CPU's default model: within half a point of the float model (issue 10).
    const int8 = await evalShipped("int8");
    expect(int8.accuracy).toBeGreaterThanOrEqual(float.accuracy - 0.005);
    expect(int8.review.flaggedRate).toBeLessThanOrEqual(0.15);
  }, 240_000);
});
