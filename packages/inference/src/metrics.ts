export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface EvalMetrics {
  n: number;
  accuracy: number;
  macroF1: number;
  weightedF1: number;
  classes: string[];
  perClass: Record<string, ClassMetrics>;
  /** confusion[true][predicted] */
  confusion: number[][];
}

/** Accuracy, per-class precision/recall/F1 and the confusion matrix, as scikit-learn defines them. */
export function computeMetrics(
  classes: readonly string[],
  truth: readonly number[],
  predicted: readonly number[],
): EvalMetrics {
  if (truth.length !== predicted.length) throw new Error("truth and predictions differ in length");
  const k = classes.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let correct = 0;
  truth.forEach((t, i) => {
    const p = predicted[i] as number;
    (confusion[t] as number[])[p] = ((confusion[t] as number[])[p] as number) + 1;
    if (t === p) correct++;
  });
  const perClass: Record<string, ClassMetrics> = {};
  let macro = 0;
  let weighted = 0;
  classes.forEach((name, c) => {
    const tp = (confusion[c] as number[])[c] as number;
    const support = (confusion[c] as number[]).reduce((a, b) => a + b, 0);
    const predictedC = confusion.reduce((a, row) => a + (row[c] as number), 0);
    const precision = predictedC ? tp / predictedC : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    perClass[name] = { precision, recall, f1, support };
    macro += f1;
    weighted += f1 * support;
  });
  const n = truth.length;
  return {
    n,
    accuracy: n ? correct / n : 0,
    macroF1: k ? macro / k : 0,
    weightedF1: n ? weighted / n : 0,
    classes: [...classes],
    perClass,
    confusion,
  };
}

/** Expected calibration error over equal-width confidence bins (top-1 confidence vs accuracy). */
export function expectedCalibrationError(
  confidences: readonly number[],
  correct: readonly boolean[],
  bins = 15,
) {
  const count = new Array<number>(bins).fill(0);
  const conf = new Array<number>(bins).fill(0);
  const acc = new Array<number>(bins).fill(0);
  confidences.forEach((c, i) => {
    const b = Math.min(bins - 1, Math.floor(c * bins));
    count[b] = (count[b] as number) + 1;
    conf[b] = (conf[b] as number) + c;
    acc[b] = (acc[b] as number) + (correct[i] ? 1 : 0);
  });
  const n = confidences.length || 1;
  let ece = 0;
  const diagram = count.map((m, b) => {
    const meanConf = m ? (conf[b] as number) / m : 0;
    const accuracy = m ? (acc[b] as number) / m : 0;
    ece += (m / n) * Math.abs(accuracy - meanConf);
    return { lower: b / bins, upper: (b + 1) / bins, count: m, confidence: meanConf, accuracy };
  });
  return { ece, bins: diagram };
}

export interface SelectiveMetrics {
  n: number;
  /** Images flagged needsReview, and their share. */
  flagged: number;
  flaggedRate: number;
  /** Share not flagged, and the accuracy on that confident part. */
  coverage: number;
  confidentAccuracy: number | null;
  /** Accuracy on the flagged part: low means the flag catches the mistakes. */
  flaggedAccuracy: number | null;
  lowConfidence: number;
  unfamiliar: number;
}

/** Accuracy and coverage of the part of a set that the review flag lets through. */
export function selectiveMetrics(
  correct: readonly boolean[],
  flags: readonly { needsReview: boolean; lowConfidence: boolean; unfamiliar: boolean }[],
): SelectiveMetrics {
  const n = correct.length;
  let flagged = 0;
  let flaggedRight = 0;
  let keptRight = 0;
  let lowConfidence = 0;
  let unfamiliar = 0;
  flags.forEach((f, i) => {
    if (f.lowConfidence) lowConfidence++;
    if (f.unfamiliar) unfamiliar++;
    if (f.needsReview) {
      flagged++;
      if (correct[i]) flaggedRight++;
    } else if (correct[i]) keptRight++;
  });
  const kept = n - flagged;
  return {
    n,
    flagged,
    flaggedRate: n ? flagged / n : 0,
    coverage: n ? kept / n : 0,
    confidentAccuracy: kept ? keptRight / kept : null,
    flaggedAccuracy: flagged ? flaggedRight / flagged : null,
    lowConfidence,
    unfamiliar,
  };
}

/**
 * Risk-coverage curve: keep the `coverage` most confident share of the images, and report its accuracy and
 * the confidence threshold that keeps it. One point per `steps` of coverage.
 */
export function riskCoverage(
  confidences: readonly number[],
  correct: readonly boolean[],
  steps = 20,
): { coverage: number; accuracy: number; threshold: number }[] {
  const order = confidences
    .map((_c, i) => i)
    .sort((a, b) => (confidences[b] as number) - (confidences[a] as number));
  const points: { coverage: number; accuracy: number; threshold: number }[] = [];
  let right = 0;
  let next = 1;
  order.forEach((idx, rank) => {
    if (correct[idx]) right++;
    const kept = rank + 1;
    while (next <= steps && kept >= Math.ceil((next / steps) * order.length)) {
      points.push({
        coverage: kept / order.length,
        accuracy: right / kept,
        threshold: confidences[idx] as number,
      });
      next++;
    }
  });
  return points;
}
