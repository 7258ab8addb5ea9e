import { describe, expect, it } from "vitest";
import { type Dataset, fitSoftmax, lossAndGradient } from "../src/softmax-regression.js";

function blobs(n: number, d: number, k: number, seed = 1): Dataset {
  let s = seed;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const centres = Array.from({ length: k }, () => Array.from({ length: d }, () => rand() * 4 - 2));
  const x = new Float32Array(n * d);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % k;
    y[i] = c;
    for (let j = 0; j < d; j++) x[i * d + j] = (centres[c]?.[j] as number) + (rand() - 0.5) * 1.5;
  }
  return { x, y, n, d, k };
}

describe("softmax regression", () => {
  it("has an analytic gradient that matches finite differences", () => {
    const data = { ...blobs(30, 4, 3), w: Float32Array.from({ length: 30 }, (_, i) => 1 + (i % 3)) };
    const params = Float64Array.from({ length: 15 }, (_, i) => Math.sin(i) * 0.3);
    const grad = new Float64Array(15);
    lossAndGradient(data, params, 0.1, grad);
    const scratch = new Float64Array(15);
    for (let i = 0; i < 15; i++) {
      const h = 1e-5;
      const p1 = Float64Array.from(params);
      const p2 = Float64Array.from(params);
      p1[i] = (p1[i] as number) + h;
      p2[i] = (p2[i] as number) - h;
      const numeric =
        (lossAndGradient(data, p1, 0.1, scratch) - lossAndGradient(data, p2, 0.1, scratch)) / (2 * h);
      expect(grad[i]).toBeCloseTo(numeric, 6);
    }
  });

  it("converges to the optimum: tiny gradient, separable data classified", () => {
    const data = blobs(300, 8, 4);
    const head = fitSoftmax(data, { lambda: 1e-3, maxIterations: 500 });
    const params = new Float64Array(4 * 8 + 4);
    params.set(head.weight);
    params.set(head.bias, 32);
    const grad = new Float64Array(params.length);
    lossAndGradient(data, params, 1e-3, grad);
    expect(Math.sqrt(grad.reduce((a, g) => a + g * g, 0))).toBeLessThan(1e-3);
    let correct = 0;
    for (let i = 0; i < data.n; i++) {
      let best = 0;
      let bestScore = Number.NEGATIVE_INFINITY;
      for (let c = 0; c < 4; c++) {
        let sc = head.bias[c] as number;
        for (let j = 0; j < 8; j++) sc += (head.weight[c * 8 + j] as number) * (data.x[i * 8 + j] as number);
        if (sc > bestScore) [best, bestScore] = [c, sc];
      }
      if (best === data.y[i]) correct++;
    }
    expect(correct / data.n).toBeGreaterThan(0.97);
    // Stronger regularisation means smaller weights.
    const strong = fitSoftmax(data, { lambda: 1, init: head });
    const norm = (w: Float32Array) => w.reduce((a, v) => a + v * v, 0);
    expect(norm(strong.weight)).toBeLessThan(norm(head.weight));
  });
});
