export function softmax(logits: ArrayLike<number>, temperature = 1): number[] {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, (logits[i] as number) / temperature);
  const exps = Array.from({ length: logits.length }, (_, i) =>
    Math.exp((logits[i] as number) / temperature - max),
  );
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

export interface Scored {
  label: string;
  confidence: number;
}

export function topK(probabilities: readonly number[], classes: readonly string[], k: number): Scored[] {
  return probabilities
    .map((confidence, i) => ({ label: classes[i] ?? String(i), confidence }))
    .sort((a, b) => b.confidence - a.confidence)
    .slice(0, Math.max(1, Math.min(k, probabilities.length)));
}
