import { type Interval, Z95 } from "./wilson";

/** Counts of ok results sharing everything the estimator needs to know about them. */
export interface AuditCount {
  /** The model flagged it for review: a stratum (flagged images are checked more, and are wrong more). */
  flagged: boolean;
  /** The audit probability it was recorded with: a stratum too, so a change of AUDIT_RATE cannot bias. */
  rate: number;
  /** The model's label. */
  predicted: string;
  /** Picked for a blind audit when it was recorded. */
  audit: boolean;
  /** The label a person gave it (an answered audit or a review); null while nobody has. */
  truth: string | null;
  count: number;
}

export interface ClassQuality {
  label: string;
  /** Share of the model's labels: what the counts say before any correction. */
  raw: number;
  /** Answered audits the model labelled this class. */
  audited: number;
  /** True share of this class among the images, corrected by the audits. */
  share: Interval | null;
  /** Of the images the model labelled this class, the share that are this class. */
  precision: Interval | null;
  /** More answered audits of this predicted class before `precision` is given. */
  precisionNeeded: number;
}

export interface QualityEstimate {
  method: string;
  level: number;
  /** ok results in the range. */
  images: number;
  /** Answered audits, and audits still waiting for a person. */
  audited: number;
  backlog: number;
  /** Images whose label a person gave outside an audit (flagged images reviewed): known, not a sample. */
  reviewed: number;
  /** More answered audits before `accuracy` and the shares are given (0 once they are). */
  needed: number;
  /** Share of the model's labels that are right. */
  accuracy: Interval | null;
  unflagged: { images: number; audited: number; needed: number; accuracy: Interval | null };
  classes: ClassQuality[];
}

export interface EstimateOptions {
  /** Every class, so classes nobody predicted still get a share; more are taken from the counts. */
  labels?: readonly string[];
  level?: number;
  /** Answered audits a part needs before its estimate is given; fewer and the intervals stop being honest. */
  minAudits?: number;
  minClassAudits?: number;
}

export const MIN_AUDITS = 20;
export const MIN_CLASS_AUDITS = 10;
// Weight of the prior of each (stratum, model label) cell, in audits: small enough not to pull a cell with a
// few audits, and it gives a cell with none a wide but centred posterior instead of no answer.
const PRIOR_WEIGHT = 1;
// In a cell's variance the pseudo-audit counts as a quarter of an audit: it is drawn from the same stratum's
// audits, so it is not worth a whole independent one (the simulation test puts coverage at 94-96 % with it).
const VARIANCE_WEIGHT = 0.25;

export const METHOD =
  "stratified estimator (strata: review flag x audit rate) from blind audits, class shares and precision " +
  "post-stratified by the model's label (P(true | predicted) per cell, 1 pseudo-audit shaped like the " +
  "stratum), images people labelled counted as known; 95 % Wilson interval with the effective sample " +
  "size of the finite-population variance";

interface Cell {
  /** Review flag and audit rate: what the audit sampling and the flag depend on. */
  stratum: string;
  flagged: boolean;
  predicted: number;
  n: number;
  /** Answered audits by true label: the sample. */
  sample: Float64Array;
  /** Every known truth (audits and reviews) by true label. */
  known: Float64Array;
  unknown: number;
}

/**
 * Estimates what the images in `counts` really are from a uniform blind audit sample in each stratum.
 *
 * Audits are picked independently of everything with a known probability, so within a stratum (review flag,
 * audit rate) and a model label they are a simple random sample: P(true | predicted, stratum) estimated from
 * them, applied to the images nobody has labelled, is unbiased. Flagged images people reviewed were chosen
 * by the model, so they are never used as a sample; each counts only for itself, with its known label.
 */
export function estimateQuality(
  counts: readonly AuditCount[],
  options: EstimateOptions = {},
): QualityEstimate {
  const level = options.level ?? 0.95;
  const minAudits = options.minAudits ?? MIN_AUDITS;
  const minClass = options.minClassAudits ?? MIN_CLASS_AUDITS;
  const labelSet = new Set(options.labels ?? []);
  for (const c of counts) {
    if (c.count <= 0) continue;
    labelSet.add(c.predicted);
    if (c.truth != null) labelSet.add(c.truth);
  }
  const labels = [...labelSet].sort();
  const index = new Map(labels.map((l, i) => [l, i]));
  const C = labels.length;

  const cells = new Map<string, Cell>();
  let audited = 0;
  let backlog = 0;
  let reviewed = 0;
  for (const row of counts) {
    if (row.count <= 0) continue;
    const key = `${row.flagged}|${row.rate}|${row.predicted}`;
    let cell = cells.get(key);
    if (!cell) {
      cell = {
        stratum: `${row.flagged}|${row.rate}`,
        flagged: row.flagged,
        predicted: index.get(row.predicted) as number,
        n: 0,
        sample: new Float64Array(C),
        known: new Float64Array(C),
        unknown: 0,
      };
      cells.set(key, cell);
    }
    cell.n += row.count;
    if (row.truth == null) {
      cell.unknown += row.count;
      if (row.audit) backlog += row.count;
      continue;
    }
    const t = index.get(row.truth) as number;
    cell.known[t] = (cell.known[t] ?? 0) + row.count;
    if (row.audit) {
      cell.sample[t] = (cell.sample[t] ?? 0) + row.count;
      audited += row.count;
    } else reviewed += row.count;
  }
  const all = [...cells.values()];

  const images = sum(all, (c) => c.n);
  const unflaggedCells = all.filter((c) => !c.flagged);
  const auditedOf = (cs: Cell[]) => sum(cs, (c) => sum([...c.sample], (x) => x));
  const unknownOf = (cs: Cell[]) => sum(cs, (c) => c.unknown);
  const neededOf = (cs: Cell[], min: number) => (unknownOf(cs) === 0 ? 0 : Math.max(0, min - auditedOf(cs)));

  const centres = stratumCentres(all, C);
  const knownOf = (cs: Cell[], j: (c: Cell) => number) => sum(cs, (c) => c.known[j(c)] ?? 0);
  /** Known images of `cs` plus each cell's unknown ones times its estimated P(true = j(cell) | cell). */
  const postStratified = (cs: Cell[], j: (c: Cell) => number, whole: number) => {
    let total = knownOf(cs, j);
    let variance = 0;
    for (const c of cs) {
      if (c.unknown === 0) continue;
      const m = sum([...c.sample], (x) => x) + PRIOR_WEIGHT;
      const centre = centres.get(c) as Float64Array;
      const theta = ((c.sample[j(c)] ?? 0) + PRIOR_WEIGHT * (centre[j(c)] ?? 0)) / m;
      total += c.unknown * theta;
      variance += unknownVariance(c.unknown, m - PRIOR_WEIGHT + VARIANCE_WEIGHT, theta);
    }
    return interval(total, variance, whole, level);
  };
  /** The same with whole strata as cells: the plain stratified estimator, for accuracy. */
  const stratified = (cs: Cell[]) => {
    const strata = new Map<string, { n: number; right: number; unknown: number }>();
    let total = knownOf(cs, (c) => c.predicted);
    for (const c of cs) {
      const s = strata.get(c.stratum) ?? { n: 0, right: 0, unknown: 0 };
      s.n += sum([...c.sample], (x) => x);
      s.right += c.sample[c.predicted] ?? 0;
      s.unknown += c.unknown;
      strata.set(c.stratum, s);
    }
    let variance = 0;
    for (const s of strata.values()) {
      if (s.unknown === 0) continue;
      // Half a right and half a wrong pseudo-audit keep a stratum whose audits all agree from claiming no doubt.
      const p = (s.right + 0.5) / (s.n + 1);
      total += s.unknown * p;
      variance += unknownVariance(s.unknown, s.n + 1, p);
    }
    return interval(
      total,
      variance,
      sum(cs, (c) => c.n),
      level,
    );
  };

  const needed = neededOf(all, minAudits);
  const unflaggedNeeded = neededOf(unflaggedCells, minAudits);
  const diag = (c: Cell) => c.predicted;
  const classes = labels.map((label, j): ClassQuality => {
    const predictedHere = all.filter((c) => c.predicted === j);
    const n = sum(predictedHere, (c) => c.n);
    const precisionNeeded = neededOf(predictedHere, minClass);
    return {
      label,
      raw: images > 0 ? n / images : 0,
      audited: auditedOf(predictedHere),
      share: needed > 0 || images === 0 ? null : postStratified(all, () => j, images),
      precision: precisionNeeded > 0 || n === 0 ? null : postStratified(predictedHere, diag, n),
      precisionNeeded,
    };
  });
  const unflaggedImages = sum(unflaggedCells, (c) => c.n);
  return {
    method: METHOD,
    level,
    images,
    audited,
    backlog,
    reviewed,
    needed,
    accuracy: needed > 0 || images === 0 ? null : stratified(all),
    unflagged: {
      images: unflaggedImages,
      audited: auditedOf(unflaggedCells),
      needed: unflaggedNeeded,
      accuracy: unflaggedNeeded > 0 || unflaggedImages === 0 ? null : stratified(unflaggedCells),
    },
    classes,
  };
}

/**
 * Variance of (unknown × θ̂ − the unknown images' true count) when θ̂ comes from m audits of the same
 * stratum: the estimate's own error plus the unknown images' binomial spread (the finite-population part).
 */
function unknownVariance(unknown: number, m: number, theta: number): number {
  const v = theta * (1 - theta);
  return (unknown * unknown * v) / m + unknown * v;
}

/**
 * Wilson score interval for an estimated share with the effective sample size of its variance (Kish), so a
 * stratified estimate keeps Wilson's behaviour near 0 and 1 and for few audits. No unknown images: exact.
 */
function interval(total: number, variance: number, whole: number, level: number): Interval {
  const p = total / whole;
  if (!(variance > 0)) return { estimate: p, low: p, high: p, level };
  const z = normalQuantile(1 - (1 - level) / 2);
  const smoothed = (total + 0.5) / (whole + 1);
  const n = (smoothed * (1 - smoothed) * whole * whole) / variance;
  const centre = (p + (z * z) / (2 * n)) / (1 + (z * z) / n);
  const half = (z / (1 + (z * z) / n)) * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
  return {
    estimate: p,
    low: Math.max(0, Math.min(p, centre - half)),
    high: Math.min(1, Math.max(p, centre + half)),
    level,
  };
}

/** z for the levels used here; 0.95 is what the API reports. */
function normalQuantile(q: number): number {
  if (Math.abs(q - 0.975) < 1e-12) return Z95;
  // Acklam's rational approximation would do for other levels; none is asked for yet.
  throw new RangeError(`level ${2 * q - 1} is not supported`);
}

/**
 * Each cell's prior centre: right as often as its stratum's audits, wrong labels spread like the stratum's
 * audited true labels. It is what a cell with no audits of its own falls back to, weighted PRIOR_WEIGHT.
 */
function stratumCentres(cells: readonly Cell[], C: number): Map<Cell, Float64Array> {
  const pooled = new Map<string, { right: number; n: number; truths: Float64Array }>();
  for (const c of cells) {
    const p = pooled.get(c.stratum) ?? { right: 0.5, n: 1, truths: new Float64Array(C).fill(0.5) };
    for (let j = 0; j < C; j++) {
      const n = c.sample[j] ?? 0;
      p.truths[j] = (p.truths[j] ?? 0) + n;
      p.n += n;
      if (j === c.predicted) p.right += n;
    }
    pooled.set(c.stratum, p);
  }
  const out = new Map<Cell, Float64Array>();
  for (const c of cells) {
    const p = pooled.get(c.stratum) as { right: number; n: number; truths: Float64Array };
    const accuracy = p.right / p.n;
    const others = p.truths.reduce((a, b) => a + b, 0) - (p.truths[c.predicted] ?? 0);
    out.set(
      c,
      p.truths.map((t, j) => (j === c.predicted ? accuracy : ((1 - accuracy) * t) / others)),
    );
  }
  return out;
}

function sum<T>(items: readonly T[], f: (item: T) => number): number {
  let s = 0;
  for (const item of items) s += f(item);
  return s;
}
