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
describe("the shipped model on TrashNet val", () => {
  it("reproduces its manifest's metrics and meets the model-quality targets", async (ctx) => {
    if (!existsSync(val)) ctx.skip(`TrashNet val images not found at ${val}`);
    const { stdout } = await run(
      process.execPath,
      ["--import", "tsx", path.join(root, "apps/cli/src/main.ts"), "eval", "--data", val, "--json"],
      { cwd: root, maxBuffer: 64 * 1024 * 1024 },
    );
    const m = JSON.parse(stdout);
    const manifest = JSON.parse(await readFile(path.join(root, "models/garbage-resnet50.json"), "utf8"));
    const recorded = manifest.metrics.find((r: { dataset: string }) => r.dataset.endsWith("trashnet/val"));
    expect(m.n).toBe(recorded.n);
    expect(m.accuracy).toBeCloseTo(recorded.accuracy, 9);
    expect(m.macroF1).toBeCloseTo(recorded.macroF1, 9);
    expect(m.review.flagged).toBe(recorded.review.flagged);
    // v4 trades white-board accuracy for real photos: 91.3 % on val (issue 8 asks for 93 %, not yet met;
    // docs/model.md). This floor catches a serving regression; the review targets below are issue 8's.
    expect(m.accuracy).toBeGreaterThanOrEqual(0.9);
    expect(m.review.flaggedRate).toBeLessThanOrEqual(0.15);
    expect(m.review.confidentAccuracy).toBeGreaterThanOrEqual(0.9);
  }, 120_000);
});
