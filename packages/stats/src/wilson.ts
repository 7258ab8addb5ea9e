/** A proportion with its interval; `level` is the interval's nominal coverage (0.95). */
export interface Interval {
  estimate: number;
  low: number;
  high: number;
  level: number;
}

/** The two-sided normal quantile for the levels this project reports. */
export const Z95 = 1.959963984540054;

/**
 * Wilson score interval for `successes` out of `n` independent trials (a test set, a simple random sample).
 * Unlike estimate ± z·SE it stays inside [0, 1] and keeps its coverage near 0 and 1 and for small n.
 */
export function wilson(successes: number, n: number, z = Z95): Interval | null {
  if (!(n > 0)) return null;
  const p = successes / n;
  const centre = (p + (z * z) / (2 * n)) / (1 + (z * z) / n);
  const half = (z / (1 + (z * z) / n)) * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
  return { estimate: p, low: Math.max(0, centre - half), high: Math.min(1, centre + half), level: 0.95 };
}

/**
 * Sample size for which a proportion near `p` has a 95 % interval of about ±`halfWidth` (the normal
 * approximation; e.g. p = 0.9, ±0.03: 385 images).
 */
export function sampleSizeFor(halfWidth: number, p = 0.5, z = Z95): number {
  return Math.ceil((z * z * p * (1 - p)) / (halfWidth * halfWidth));
}
