import { type Interval, wilson } from "@garbage/stats";

export interface EvalIntervals {
  method: string;
  level: number;
  accuracy: Interval | null;
  perClass: Record<string, { precision: Interval | null; recall: Interval | null }>;
}

/**
 * 95 % Wilson intervals for the test set's accuracy and each class's precision and recall, read off the
 * confusion matrix: the test set is treated as a random sample of the photos the model will see, so the
 * interval is how far the true number may be from the measured one (379 images at 93 %: about ±2.6 points).
 */
export function evalIntervals(classes: readonly string[], confusion: readonly number[][]): EvalIntervals {
  let right = 0;
  let n = 0;
  const perClass: EvalIntervals["perClass"] = {};
  classes.forEach((c, i) => {
    const row = confusion[i] ?? [];
    const diag = row[i] ?? 0;
    right += diag;
    n += row.reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((s, r) => s + (r[i] ?? 0), 0);
    perClass[c] = {
      precision: wilson(diag, predicted),
      recall: wilson(
        diag,
        row.reduce((a, b) => a + b, 0),
      ),
    };
  });
  return { method: "Wilson score interval, 95 %", level: 0.95, accuracy: wilson(right, n), perClass };
}

/** "0.9027-0.9522", or "-" without images. */
export const formatInterval = (i: Interval | null | undefined, digits = 4) =>
  i ? `${i.low.toFixed(digits)}-${i.high.toFixed(digits)}` : "-";
