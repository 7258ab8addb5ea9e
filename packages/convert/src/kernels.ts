/** Keras/TF conv kernels are [kh, kw, cin, cout]; ONNX Conv wants [cout, cin, kh, kw]. */
export function kernelToOihw(kernel: Float32Array, shape: readonly number[]): Float32Array {
  const [kh = 0, kw = 0, cin = 0, cout = 0] = shape;
  if (shape.length !== 4 || kernel.length !== kh * kw * cin * cout) {
    throw new Error(`conv kernel of shape [${shape}] holds ${kernel.length} values`);
  }
  const out = new Float32Array(kernel.length);
  for (let h = 0; h < kh; h++) {
    for (let w = 0; w < kw; w++) {
      for (let i = 0; i < cin; i++) {
        const src = ((h * kw + w) * cin + i) * cout;
        for (let o = 0; o < cout; o++) out[((o * cin + i) * kh + h) * kw + w] = kernel[src + o] ?? 0;
      }
    }
  }
  return out;
}

export interface BatchNormParams {
  gamma: Float32Array;
  beta: Float32Array;
  mean: Float32Array;
  variance: Float32Array;
  epsilon: number;
}

/**
 * Folds inference-mode batch norm into the preceding conv: y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta
 * becomes conv'(x) + b' with each output channel's filter scaled. Computed in float64 and rounded once.
 */
export function foldBatchNorm(
  weight: Float32Array,
  bias: Float32Array,
  bn: BatchNormParams,
): { weight: Float32Array; bias: Float32Array } {
  const channels = bias.length;
  for (const key of ["gamma", "beta", "mean", "variance"] as const) {
    if (bn[key].length !== channels)
      throw new Error(`batch norm ${key} has ${bn[key].length} values for ${channels} channels`);
  }
  const perChannel = weight.length / channels;
  const outWeight = new Float32Array(weight.length);
  const outBias = new Float32Array(channels);
  for (let o = 0; o < channels; o++) {
    const scale = (bn.gamma[o] ?? 0) / Math.sqrt((bn.variance[o] ?? 0) + bn.epsilon);
    for (let j = o * perChannel; j < (o + 1) * perChannel; j++) outWeight[j] = (weight[j] ?? 0) * scale;
    outBias[o] = ((bias[o] ?? 0) - (bn.mean[o] ?? 0)) * scale + (bn.beta[o] ?? 0);
  }
  return { weight: outWeight, bias: outBias };
}
