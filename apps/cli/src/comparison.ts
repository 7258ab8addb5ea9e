import type { Comparison } from "@garbage/db";

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

/** A candidate against the active version, as `models compare` and `models promote` print it. */
export function printComparison(print: (line: string) => void, c: Comparison) {
  const r = c.reviewed;
  print(
    `reviewed after its cut-off: ${r.images} images; candidate ${r.candidate.correct} right (${pct(r.candidate.accuracy)}), ` +
      `active ${r.active.correct} right (${pct(r.active.accuracy)})`,
  );
  for (const k of r.perClass) {
    print(`  ${k.label}\t${k.n}\trecall ${pct(k.candidateRecall)} (active ${pct(k.activeRecall)})`);
  }
  const l = c.live;
  print(
    `live: ${l.images} images; agreement ${pct(l.agreement)}; review rate ${pct(l.candidateReviewRate)} ` +
      `(active ${pct(l.activeReviewRate)})`,
  );
  for (const ch of c.changes) print(`  ${ch.from} -> ${ch.to}\t${ch.n}`);
}
