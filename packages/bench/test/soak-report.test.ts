import { expect, it } from "vitest";
import { type Sample, slope, summarise } from "../src/soak-report.js";

it("slope is the least-squares rate of change", () => {
  expect(slope([])).toBe(0);
  expect(slope([{ x: 1, y: 5 }])).toBe(0);
  expect(slope([0, 1, 2, 3].map((x) => ({ x, y: 2 * x + 7 })))).toBeCloseTo(2);
  // Noise around a flat line: close to 0, of either sign.
  expect(Math.abs(slope([5, 7, 5, 7, 5, 7].map((y, x) => ({ x, y }))))).toBeLessThan(0.3);
});

it("summarises throughput per half and RSS after the warm-up fifth of the run", () => {
  // 100 s at 10 images/s; the worker grows 1 MiB every 10 s after a warm-up jump, the api stays flat.
  const samples: Sample[] = Array.from({ length: 11 }, (_, i) => ({
    t: i * 10,
    done: i * 100,
    rssMiB: [200, i < 2 ? 300 + i * 100 : 500 + i],
  }));
  const text = summarise(samples, ["api", "worker-1"], { total: 1000, seconds: 100, batches: 10 });
  expect(text).toContain("1000 images in 100.0 s = 10.0 images/s (10 batches)");
  expect(text).toContain("first half 10.0/s, second half 10.0/s");
  expect(text).toContain("RSS from t=20 s to t=100 s");
  expect(text).toMatch(/api\s+200\s+200\s+200 \+0\.00/);
  // 1 MiB per 10 s is 6 MiB per minute; the warm-up jump before t=20 s is not counted.
  expect(text).toMatch(/worker-1\s+502\s+510\s+510 \+6\.00/);
  expect(summarise(samples.slice(0, 1), ["api"], { total: 1, seconds: 1, batches: 1 })).toMatch(/too few/);
});
