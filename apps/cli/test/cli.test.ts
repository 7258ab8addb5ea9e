import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { writeTinyModel } from "@garbage/onnx";
import sharp from "sharp";
import { beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const main = path.resolve(import.meta.dirname, "../src/main.ts");
let dir: string;
let _model: string;

function cli(...args: string[]) {
  return run(process.execPath, ["--import", "tsx", main, ...args], {
    cwd: path.resolve(import.meta.dirname, "../../.."),
    env: { ...process.env, INIT_CWD: dir },
  });
}

const png = (r: number, g: number, b: number) =>
  sharp({ create: { width: 24, height: 18, channels: 3, background: { r, g, b } } })
    .png()
    .toBuffer();

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "cli-"));
  await writeTinyModel(dir, { classes: ["red", "green", "blue"], seed: 1 });
  // An ImageFolder with one mistake planted: a blue image filed under red.
  const layout: Record<string, [number, number, number][]> = {
    red: [
      [250, 0, 0],
      [230, 20, 20],
      [0, 0, 250],
    ],
    green: [
      [0, 250, 0],
      [20, 230, 20],
    ],
    blue: [[0, 0, 250]],
  };
  for (const [cls, colours] of Object.entries(layout)) {
    await mkdir(path.join(dir, "data", cls, "nested"), { recursive: true });
    for (const [i, c] of colours.entries())
      await writeFile(path.join(dir, "data", cls, i === 0 ? "nested" : "", `${i}.png`), await png(...c));
  }
  await writeFile(path.join(dir, "data", "green", "broken.jpg"), Buffer.from("not a jpeg"));
});

describe("garbage CLI", () => {
  it("classify --json prints exactly one JSON array and recurses into folders", async () => {
    const { stdout, stderr } = await cli("classify", "data", "--json", "--model", "tiny.onnx", "--top", "2");
    const rows = JSON.parse(stdout) as {
      file: string;
      label: string | null;
      confidence: number | null;
      top: unknown[];
      needsReview: boolean | null;
    }[];
    expect(rows).toHaveLength(7);
    // The tiny model ships no review section: the flag is the default confidence threshold alone.
    for (const r of rows) {
      if (r.confidence === null) expect(r.needsReview).toBeNull();
      else expect(r.needsReview).toBe(r.confidence < 0.5);
    }
    const byFile = Object.fromEntries(rows.map((r) => [r.file, r]));
    expect(byFile["data/red/nested/0.png"]?.label).toBe("red");
    expect(byFile["data/red/2.png"]?.label).toBe("blue");
    expect(byFile["data/green/1.png"]?.top).toHaveLength(2);
    expect(byFile["data/green/broken.jpg"]?.label).toBeNull();
    expect(stderr).toMatch(/broken\.jpg/);
  });

  it("classify prints top-k lines and a per-class summary", async () => {
    const { stdout } = await cli("classify", "data/red", "data/blue/nested/0.png", "--model", "tiny.onnx");
    expect(stdout).toMatch(/data\/red\/1\.png\tred \d+\.\d%\t/);
    expect(stdout).toMatch(/4 classified, 0 failed/);
    expect(stdout).toMatch(/red\s+2\s+50\.0%/);
    expect(stdout).toMatch(/blue\s+2\s+50\.0%/);
  });

  it("eval --json reports metrics, counts unreadable images and writes a report", async () => {
    const { stdout } = await cli(
      "eval",
      "--data",
      "data",
      "--json",
      "--model",
      "tiny.onnx",
      "--report",
      "report",
    );
    const m = JSON.parse(stdout);
    expect(m.n).toBe(6);
    expect(m.unreadable).toBe(1);
    expect(m.accuracy).toBeCloseTo(5 / 6, 6);
    expect(m.classes).toEqual(["red", "green", "blue"]);
    expect(m.confusion).toEqual([
      [2, 0, 1],
      [0, 2, 0],
      [0, 0, 1],
    ]);
    expect(m.perClass.blue).toEqual({ precision: 0.5, recall: 1, f1: 2 / 3, support: 1 });
    // 95 % Wilson intervals: 5 of 6 is 0.436-0.970; blue's precision 1 of 2 is 0.095-0.905.
    expect(m.intervals.method).toMatch(/Wilson/);
    expect(m.intervals.accuracy.low).toBeCloseTo(0.4365, 3);
    expect(m.intervals.accuracy.high).toBeCloseTo(0.9699, 3);
    expect(m.intervals.perClass.blue.precision.low).toBeCloseTo(0.0945, 3);
    expect(m.review.n).toBe(6);
    expect(m.review.flagged + Math.round(m.review.coverage * 6)).toBe(6);
    expect(m.review.unfamiliar).toBe(0);
    expect(m.riskCoverage.at(-1)).toMatchObject({ coverage: 1, accuracy: m.accuracy });
    expect(m.riskCoverage[0].accuracy).toBeGreaterThanOrEqual(m.accuracy);
    for (const f of [
      "risk-coverage.png",
      "index.html",
      "confusion.png",
      "reliability.png",
      "metrics.json",
      "predictions.csv",
      "thumbs/0.jpg",
    ]) {
      expect((await stat(path.join(dir, "report", f))).size, f).toBeGreaterThan(0);
    }
    const html = await readFile(path.join(dir, "report", "index.html"), "utf8");
    expect(html).toMatch(/<b>red<\/b> &rarr; blue/);
    // The API's GET /v1/model reads this list (apps/api/src/eval-report.ts).
    const wrong = JSON.parse(await readFile(path.join(dir, "report", "misclassified.json"), "utf8"));
    expect(wrong).toEqual([
      {
        file: expect.stringMatching(/\.png$/),
        truth: "red",
        predicted: "blue",
        confidence: expect.any(Number),
        thumbnail: "thumbs/0.jpg",
      },
    ]);
  });

  it("rejects bad usage with exit code 2 and a message", async () => {
    const err = await cli("classify", "--model", "tiny.onnx").catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect((err as { code: number }).code).toBe(2);
    expect((err as { stderr: string }).stderr).toMatch(/no images given/);
    const err2 = await cli("eval", "--data", "nowhere", "--model", "tiny.onnx").catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect((err2 as { code: number }).code).toBe(2);
    const err3 = await cli("classify", "data", "--top", "zero", "--model", "tiny.onnx").catch(
      (e: { code: number }) => e,
    );
    expect((err3 as { code: number }).code).toBe(2);
  });
});
