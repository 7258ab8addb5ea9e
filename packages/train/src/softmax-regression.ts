/**
 * Multinomial logistic regression with L2 regularisation, fitted by L-BFGS: the convex "new head on a
 * frozen backbone" problem, solved to convergence and deterministically (no SGD noise, no seed needed).
 */
export interface Dataset {
  /** Row-major [n, d]. */
  x: Float32Array;
  y: Int32Array;
  n: number;
  d: number;
  k: number;
  /** Per-sample weights (class balancing); 1 when absent. */
  w?: Float32Array;
}

export interface Head {
  /** Row-major [k, d] (Gemm B with transB = 1). */
  weight: Float32Array;
  bias: Float32Array;
}

/** Mean weighted cross-entropy + lambda/2 * ||W||^2 (bias unpenalised), and its gradient. */
export function lossAndGradient(
  data: Dataset,
  params: Float64Array,
  lambda: number,
  grad: Float64Array,
): number {
  const { x, y, n, d, k, w } = data;
  grad.fill(0);
  const logits = new Float64Array(k);
  let loss = 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const wi = w ? (w[i] as number) : 1;
    total += wi;
    const row = i * d;
    let max = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < k; c++) {
      let s = params[k * d + c] as number;
      const base = c * d;
      for (let j = 0; j < d; j++) s += (params[base + j] as number) * (x[row + j] as number);
      logits[c] = s;
      if (s > max) max = s;
    }
    let z = 0;
    for (let c = 0; c < k; c++) {
      logits[c] = Math.exp((logits[c] as number) - max);
      z += logits[c] as number;
    }
    const yi = y[i] as number;
    loss -= wi * Math.log((logits[yi] as number) / z);
    for (let c = 0; c < k; c++) {
      const g = wi * ((logits[c] as number) / z - (c === yi ? 1 : 0));
      if (g === 0) continue;
      const base = c * d;
      for (let j = 0; j < d; j++) grad[base + j] = (grad[base + j] as number) + g * (x[row + j] as number);
      grad[k * d + c] = (grad[k * d + c] as number) + g;
    }
  }
  let reg = 0;
  for (let i = 0; i < params.length; i++) {
    grad[i] = (grad[i] as number) / total;
    if (i < k * d) {
      reg += (params[i] as number) ** 2;
      grad[i] = (grad[i] as number) + lambda * (params[i] as number);
    }
  }
  return loss / total + (lambda / 2) * reg;
}

const dot = (a: Float64Array, b: Float64Array) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
};

export interface FitOptions {
  lambda: number;
  maxIterations?: number;
  tolerance?: number;
  memory?: number;
  /** Warm start (e.g. the solution for a neighbouring lambda). */
  init?: Head;
}

/** L-BFGS (two-loop recursion) with a backtracking Armijo line search. */
export function fitSoftmax(data: Dataset, opts: FitOptions): Head & { loss: number; iterations: number } {
  const { d, k } = data;
  const size = k * d + k;
  const maxIter = opts.maxIterations ?? 300;
  const tol = opts.tolerance ?? 1e-6;
  const m = opts.memory ?? 10;
  let x = new Float64Array(size);
  if (opts.init) {
    x.set(opts.init.weight);
    x.set(opts.init.bias, k * d);
  }
  let g = new Float64Array(size);
  let f = lossAndGradient(data, x, opts.lambda, g);
  const s: Float64Array[] = [];
  const yv: Float64Array[] = [];
  let iter = 0;
  for (; iter < maxIter; iter++) {
    // Two-loop recursion: direction = -H * g.
    const q = Float64Array.from(g);
    const alpha: number[] = [];
    for (let i = s.length - 1; i >= 0; i--) {
      const rho = 1 / dot(yv[i] as Float64Array, s[i] as Float64Array);
      const a = rho * dot(s[i] as Float64Array, q);
      alpha[i] = a;
      const yi = yv[i] as Float64Array;
      for (let j = 0; j < size; j++) q[j] = (q[j] as number) - a * (yi[j] as number);
    }
    const last = s.length - 1;
    const gamma =
      last >= 0
        ? dot(s[last] as Float64Array, yv[last] as Float64Array) /
          dot(yv[last] as Float64Array, yv[last] as Float64Array)
        : 1 / Math.max(1, Math.sqrt(dot(g, g)));
    for (let j = 0; j < size; j++) q[j] = (q[j] as number) * gamma;
    for (let i = 0; i < s.length; i++) {
      const rho = 1 / dot(yv[i] as Float64Array, s[i] as Float64Array);
      const b = rho * dot(yv[i] as Float64Array, q);
      const si = s[i] as Float64Array;
      for (let j = 0; j < size; j++) q[j] = (q[j] as number) + (si[j] as number) * ((alpha[i] as number) - b);
    }
    const dir = q.map((v) => -v);
    let slope = dot(g, dir);
    if (slope >= 0) {
      // Not a descent direction (numerical trouble): restart from steepest descent.
      s.length = 0;
      yv.length = 0;
      for (let j = 0; j < size; j++) dir[j] = -(g[j] as number);
      slope = dot(g, dir);
    }
    let step = 1;
    const xNew = new Float64Array(size);
    const gNew = new Float64Array(size);
    let fNew = f;
    for (let tries = 0; tries < 40; tries++) {
      for (let j = 0; j < size; j++) xNew[j] = (x[j] as number) + step * (dir[j] as number);
      fNew = lossAndGradient(data, xNew, opts.lambda, gNew);
      if (fNew <= f + 1e-4 * step * slope) break;
      step /= 2;
    }
    const sk = xNew.map((v, j) => v - (x[j] as number));
    const yk = gNew.map((v, j) => v - (g[j] as number));
    if (dot(sk, yk) > 1e-12) {
      s.push(sk);
      yv.push(yk);
      if (s.length > m) {
        s.shift();
        yv.shift();
      }
    }
    const improvement = f - fNew;
    x = xNew;
    g = gNew;
    f = fNew;
    if (Math.sqrt(dot(g, g)) < tol || improvement < tol * 1e-3) break;
  }
  return {
    weight: Float32Array.from(x.subarray(0, k * d)),
    bias: Float32Array.from(x.subarray(k * d)),
    loss: f,
    iterations: iter,
  };
}
