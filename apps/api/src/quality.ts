import { getAuditCounts, type QualityQuery } from "@garbage/db";
import { type AuditCount, estimateQuality, MIN_AUDITS, type QualityEstimate } from "@garbage/stats";
import { z } from "@hono/zod-openapi";
import type { RouteDeps } from "./types";

const IntervalSchema = z
  .object({
    estimate: z.number(),
    low: z.number(),
    high: z.number(),
    level: z.number().openapi({ description: "Nominal coverage of [low, high]: 0.95" }),
  })
  .openapi("Interval");

const maybe = (what: string) =>
  IntervalSchema.nullable().openapi({ description: `${what}; null until enough audits are answered` });

export const QualitySchema = z
  .object({
    method: z.string().openapi({ description: "How the estimates and intervals are computed" }),
    level: z.number(),
    images: z.number().int().openapi({ description: "ok results in range" }),
    audited: z.number().int().openapi({ description: "Blind audits answered in range" }),
    backlog: z
      .number()
      .int()
      .openapi({ description: "Audits picked in range and still waiting for a person" }),
    reviewed: z.number().int().openapi({
      description: "Images labelled by a review (not an audit): counted as known, never used as a sample",
    }),
    minAudits: z.number().int(),
    needed: z
      .number()
      .int()
      .openapi({ description: "More answered audits before accuracy and shares are given" }),
    moreAuditsToHalve: z.number().int().nullable().openapi({
      description:
        "About how many more answered audits would halve the interval's width (width ~ 1/sqrt(audits))",
    }),
    accuracy: maybe("Share of the model's labels in range that are right"),
    unflagged: z.object({
      images: z.number().int(),
      audited: z.number().int(),
      needed: z.number().int(),
      accuracy: maybe("The same for the images the model did not flag"),
    }),
    classes: z.array(
      z.object({
        label: z.string(),
        raw: z.number().openapi({ description: "Share of the model's labels (before any correction)" }),
        audited: z.number().int().openapi({ description: "Answered audits the model labelled this class" }),
        share: maybe("True share of this class, corrected by the audits"),
        precision: maybe("Of the images the model labelled this class, the share that are"),
        precisionNeeded: z.number().int(),
      }),
    ),
  })
  .openapi("Quality");

export const BucketQualitySchema = z
  .object({ audited: z.number().int(), needed: z.number().int(), accuracy: maybe("Accuracy in this bucket") })
  .openapi("BucketQuality");

export type Quality = z.infer<typeof QualitySchema>;

function toResponse(q: QualityEstimate): Quality {
  return {
    ...q,
    minAudits: MIN_AUDITS,
    // Widths shrink like 1/sqrt(audits): four times the audits halve them.
    moreAuditsToHalve: q.accuracy && q.audited > 0 ? 3 * q.audited : null,
  };
}

/** The audit estimates for a stats query, in total and for each bucket (UTC ms) that has audits. */
export async function readQuality(
  deps: RouteDeps,
  query: QualityQuery,
): Promise<{ quality: Quality; buckets: Map<number, QualityEstimate> }> {
  const counts = await getAuditCounts(deps.db, query);
  const labels = deps.model?.classes ?? [];
  const quality = toResponse(estimateQuality(counts.total, { labels }));
  const buckets = new Map<number, QualityEstimate>();
  for (const [at, rows] of counts.buckets) {
    // Only buckets with an answered audit: the estimator is cheap, but a year of minutes is many buckets.
    if (rows.some((r: AuditCount) => r.audit && r.truth != null))
      buckets.set(at, estimateQuality(rows, { labels }));
  }
  return { quality, buckets };
}
