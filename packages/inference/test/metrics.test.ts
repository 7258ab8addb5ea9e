import { describe, expect, it } from "vitest";
import {
  computeMetrics,
  expectedCalibrationError,
  riskCoverage,
  selectiveMetrics,
  softmax,
  topK,
} from "../src/index.js";

describe("metrics", () => {
  it("matches a hand-computed confusion matrix (values checked against scikit-learn)", () => {
    // y_true = [0,0,0,1,1,2], y_pred = [0,0,1,1,2,2]
    const m = computeMetrics(["a", "b", "c"], [0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2]);
    expect(m.confusion).toEqual([
      [2, 1, 0],
      [0, 1, 1],
      [0, 0, 1],
    ]);
    expect(m.accuracy).toBeCloseTo(4 / 6, 10);
    expect(m.perClass.a).toEqual({ precision: 1, recall: 2 / 3, f1: 0.8, support: 3 });
    expect(m.perClass.b?.f1).toBeCloseTo(0.5, 10);
    expect(m.perClass.c?.f1).toBeCloseTo(2 / 3, 10);
    // sklearn: f1_score(..., average="macro") = 0.6555..., "weighted" = 0.6777...
    expect(m.macroF1).toBeCloseTo((0.8 + 0.5 + 2 / 3) / 3, 10);
    expect(m.weightedF1).toBeCloseTo((0.8 * 3 + 0.5 * 2 + (2 / 3) * 1) / 6, 10);
  });

  it("gives zero, not NaN, for a class never predicted", () => {
    const m = computeMetrics(["a", "b"], [0, 1], [0, 0]);
    expect(m.perClass.b).toEqual({ precision: 0, recall: 0, f1: 0, support: 1 });
  });

  it("softmax is stable for large logits and honours temperature", () => {
    const p = softmax([1000, 1001, 1002]);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(p[2]).toBeGreaterThan(p[1] as number);
    const flat = softmax([1, 2, 3], 1e6);
    flat.forEach((v) => {
      expect(v).toBeCloseTo(1 / 3, 5);
    });
    expect(topK([0.1, 0.7, 0.2], ["x", "y", "z"], 2)).toEqual([
      { label: "y", confidence: 0.7 },
      { label: "z", confidence: 0.2 },
    ]);
  });

  it("expected calibration error is zero when confidence equals accuracy", () => {
    const conf = [0.75, 0.75, 0.75, 0.75];
    expect(expectedCalibrationError(conf, [true, true, true, false]).ece).toBeCloseTo(0, 12);
    expect(expectedCalibrationError([0.9, 0.9], [false, false]).ece).toBeCloseTo(0.9, 12);
  });
});

describe("selective metrics and risk-coverage", () => {
  it("scores the part the review flag lets through", () => {
    const flag = (needsReview: boolean, lowConfidence = needsReview, unfamiliar = false) => ({
      needsReview,
      lowConfidence,
      unfamiliar,
    });
    const m = selectiveMetrics(
      [true, true, false, false, true],
      [flag(false), flag(false), flag(true), flag(false), flag(true, false, true)],
    );
    expect(m).toEqual({
      n: 5,
      flagged: 2,
      flaggedRate: 0.4,
      coverage: 0.6,
      confidentAccuracy: 2 / 3,
      flaggedAccuracy: 0.5,
      lowConfidence: 1,
      unfamiliar: 1,
    });
  });

  it("keeps the most confident share first", () => {
    const curve = riskCoverage([0.9, 0.2, 0.8, 0.5], [true, false, true, false], 4);
    expect(curve).toEqual([
      { coverage: 0.25, accuracy: 1, threshold: 0.9 },
      { coverage: 0.5, accuracy: 1, threshold: 0.8 },
      { coverage: 0.75, accuracy: 2 / 3, threshold: 0.5 },
      { coverage: 1, accuracy: 0.5, threshold: 0.2 },
    ]);
  });
});
