import { computeMetrics, softmax } from "@garbage/inference";
import { type Dataset, fitSoftmax, type Head } from "./softmax-regression.js";

export interface Standardiser {
  mean: Float32Array;
  std: Float32Array;
}

/** Per-feature mean/std on the training set: L-BFGS converges far faster on standardised inputs. */
export function fitStandardiser(x: Float32Array, n: number, d: number): Standardiser {
  const mean = new Float64Array(d);
  const sq = new Float64Array(d);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < d; j++) {
      const v = x[i * d + j] as number;
      mean[j] = (mean[j] as number) + v;
      sq[j] = (sq[j] as number) + v * v;
    }
  const m = new Float32Array(d);
  const s = new Float32Array(d);
  for (let j = 0; j < d; j++) {
    m[j] = (mean[j] as number) / n;
    s[j] = Math.sqrt(Math.max((sq[j] as number) / n - (m[j] as number) ** 2, 0)) || 1;
  }
  return { mean: m, std: s };
}

export function standardise(x: Float32Array, st: Standardiser): Float32Array {
  const d = st.mean.length;
  return x.map((v, i) => (v - (st.mean[i % d] as number)) / (st.std[i % d] as number));
}

/** Folds the standardisation into the head so the exported graph takes raw backbone features. */
export function foldStandardiser(head: Head, st: Standardiser): Head {
  const d = st.mean.length;
  const k = head.bias.length;
  const weight = new Float32Array(k * d);
  const bias = Float32Array.from(head.bias);
  for (let c = 0; c < k; c++)
    for (let j = 0; j < d; j++) {
      const w = (head.weight[c * d + j] as number) / (st.std[j] as number);
      weight[c * d + j] = w;
      bias[c] = (bias[c] as number) - w * (st.mean[j] as number);
    }
  return { weight, bias };
}

export function logitsOf(head: Head, x: Float32Array, n: number, d: number): Float64Array {
  const k = head.bias.length;
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < k; c++) {
      let s = head.bias[c] as number;
      for (let j = 0; j < d; j++) s += (head.weight[c * d + j] as number) * (x[i * d + j] as number);
      out[i * k + c] = s;
    }
  return out;
}

export function argmaxRows(logits: Float64Array, k: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < logits.length / k; i++) {
    let best = 0;
    for (let c = 1; c < k; c++)
      if ((logits[i * k + c] as number) > (logits[i * k + best] as number)) best = c;
    out.push(best);
  }
  return out;
}

export function nll(logits: Float64Array, y: ArrayLike<number>, k: number, temperature = 1): number {
  let loss = 0;
  const n = logits.length / k;
  for (let i = 0; i < n; i++) {
    const p = softmax(logits.subarray(i * k, (i + 1) * k), temperature);
    loss -= Math.log(Math.max(p[y[i] as number] as number, 1e-12));
  }
  return loss / n;
}

/** Temperature minimising validation NLL (golden-section search on log T): Guo et al. 2017. */
export function fitTemperature(logits: Float64Array, y: ArrayLike<number>, k: number): number {
  let lo = Math.log(0.05);
  let hi = Math.log(20);
  const g = (Math.sqrt(5) - 1) / 2;
  for (let it = 0; it < 60; it++) {
    const a = hi - g * (hi - lo);
    const b = lo + g * (hi - lo);
    if (nll(logits, y, k, Math.exp(a)) < nll(logits, y, k, Math.exp(b))) hi = b;
    else lo = a;
  }
  return Math.exp((lo + hi) / 2);
}

export interface Trial {
  lambda: number;
  trainLoss: number;
  valAccuracy: number;
  valMacroF1: number;
  valNll: number;
  iterations: number;
  seconds: number;
}

type ValScore = { valAccuracy: number; valMacroF1: number };

/** The selection rule for every head choice: better val accuracy, then better macro-F1; ties keep `b`. */
export function beats(a: ValScore, b: ValScore): boolean {
  return (
    a.valAccuracy > b.valAccuracy + 1e-9 ||
    (Math.abs(a.valAccuracy - b.valAccuracy) < 1e-9 && a.valMacroF1 > b.valMacroF1 + 1e-9)
  );
}

/**
 * Fits the head for each lambda (largest first, each warm-started from the previous) and keeps the one
 * with the best validation accuracy, then macro-F1, then the larger lambda (simpler model) on ties.
 */
export function selectHead(
  train: Dataset,
  val: Dataset,
  classes: readonly string[],
  lambdas: readonly number[],
  log: (s: string) => void,
) {
  const sorted = [...lambdas].sort((a, b) => b - a);
  let best: { head: Head; trial: Trial } | null = null;
  const trials: Trial[] = [];
  let init: Head | undefined;
  for (const lambda of sorted) {
    const t0 = performance.now();
    const fit = fitSoftmax(train, { lambda, init, maxIterations: 400 });
    init = fit;
    const logits = logitsOf(fit, val.x, val.n, val.d);
    const m = computeMetrics(classes, Array.from(val.y), argmaxRows(logits, val.k));
    const trial: Trial = {
      lambda,
      trainLoss: fit.loss,
      valAccuracy: m.accuracy,
      valMacroF1: m.macroF1,
      valNll: nll(logits, val.y, val.k),
      iterations: fit.iterations,
      seconds: (performance.now() - t0) / 1000,
    };
    trials.push(trial);
    log(
      `lambda ${lambda.toExponential(1)}: val acc ${(100 * m.accuracy).toFixed(2)}% macro-F1 ${m.macroF1.toFixed(4)} nll ${trial.valNll.toFixed(4)} (${fit.iterations} it, ${trial.seconds.toFixed(1)} s)`,
    );
    if (!best || beats(trial, best.trial)) best = { head: fit, trial };
  }
  if (!best) throw new Error("no lambda given");
  return { ...best, trials };
}
