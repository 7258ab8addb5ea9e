/** One RSS sample of the soak: seconds since the first upload, images done, each process's RSS. */
export interface Sample {
  t: number;
  done: number;
  rssMiB: number[];
}

/** Least-squares slope of y over x (per unit of x); 0 with fewer than two points. */
export function slope(points: readonly { x: number; y: number }[]): number {
  if (points.length < 2) return 0;
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const sxx = points.reduce((a, p) => a + (p.x - mx) ** 2, 0);
  const sxy = points.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0);
  return sxx === 0 ? 0 : sxy / sxx;
}

/**
 * The soak's verdict in words: throughput over the run and in its first and second half, and per process
 * RSS at the start and end of the steady part (after the first fifth of the run: module loading, model
 * warm-up and the first allocations of every pool are not a leak), its peak, and its slope in MiB per minute.
 */
export function summarise(
  samples: readonly Sample[],
  names: readonly string[],
  run: { total: number; seconds: number; batches: number },
): string {
  const last = samples.at(-1);
  if (!last || samples.length < 2) return "too few samples for a summary (raise --images or lower --every)";
  const warm = samples.filter((s) => s.t >= last.t / 5);
  const steady = warm.length >= 2 ? warm : samples;
  const half = samples.filter((s) => s.t <= last.t / 2).at(-1) ?? samples[0];
  const rate = (a: Sample | undefined, b: Sample | undefined) =>
    a && b && b.t > a.t ? (b.done - a.done) / (b.t - a.t) : 0;
  const lines = [
    `throughput: ${run.total} images in ${run.seconds.toFixed(1)} s = ${(run.total / run.seconds).toFixed(1)} images/s ` +
      `(${run.batches} batches); first half ${rate(samples[0], half).toFixed(1)}/s, ` +
      `second half ${rate(half, last).toFixed(1)}/s`,
    `RSS from t=${steady[0]?.t.toFixed(0)} s to t=${last.t.toFixed(0)} s (MiB): process, start, end, peak, slope MiB/min`,
  ];
  for (const [i, name] of names.entries()) {
    const at = (s: Sample | undefined) => s?.rssMiB[i] ?? 0;
    const peak = Math.max(...samples.map(at));
    const perMinute = slope(steady.map((s) => ({ x: s.t / 60, y: at(s) })));
    lines.push(
      `  ${name.padEnd(10)} ${at(steady[0]).toFixed(0).padStart(6)} ${at(last).toFixed(0).padStart(6)} ` +
        `${peak.toFixed(0).padStart(6)} ${perMinute >= 0 ? "+" : ""}${perMinute.toFixed(2)}`,
    );
  }
  return lines.join("\n");
}
