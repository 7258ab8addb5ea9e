import { getStats } from "@garbage/db";
import { createRoute, z } from "@hono/zod-openapi";
import { ApiError } from "../errors";
import { principalOf, statsScope } from "../principal";
import { authResponses, BearerSecurity, createRouter, errorResponse } from "../router";
import { plainText } from "../text";
import type { RouteDeps } from "../types";

const BUCKET_MS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;

const Query = z.object({
  from: z.iso
    .datetime({ offset: true })
    .optional()
    .openapi({ description: "Inclusive; default `to` minus 24 h" }),
  to: z.iso.datetime({ offset: true }).optional().openapi({ description: "Exclusive; default now" }),
  bucket: z.enum(["minute", "hour", "day"]).default("hour"),
  site: plainText().optional(),
  line: plainText().optional(),
  threshold: z.coerce
    .number()
    .min(0)
    .max(1)
    .refine((t) => Math.abs(t * 20 - Math.round(t * 20)) < 1e-9, "must be a multiple of 0.05")
    .optional()
    .openapi({
      description: "Low-confidence threshold (multiple of 0.05); default from LOW_CONFIDENCE_THRESHOLD",
    }),
});

const reviewRate = (of: string) =>
  z.number().openapi({ description: `needsReview / ${of}; 0 when there is nothing to divide by` });

const Stats = z
  .object({
    from: z.iso.datetime(),
    to: z.iso.datetime(),
    bucket: z.enum(["minute", "hour", "day"]),
    threshold: z.number(),
    total: z.number().int().openapi({ description: "Results, ok and failed" }),
    classified: z.number().int(),
    failed: z.number().int(),
    lowConfidence: z.number().int().openapi({ description: "ok results with confidence < threshold" }),
    needsReview: z.number().int().openapi({
      description: "ok results the model flagged for review (its own thresholds, independent of `threshold`)",
    }),
    reviewRate: reviewRate("classified"),
    classes: z.array(
      z.object({
        label: z.string(),
        count: z.number().int(),
        share: z.number().openapi({ description: "count / classified" }),
        lowConfidence: z.number().int(),
        needsReview: z.number().int(),
        reviewRate: reviewRate("count"),
      }),
    ),
    series: z.array(
      z.object({
        bucket: z.iso.datetime(),
        total: z.number().int(),
        failed: z.number().int(),
        counts: z.record(z.string(), z.number().int()),
        needsReview: z.number().int(),
        reviewRate: reviewRate("(total - failed)"),
      }),
    ),
  })
  .openapi("Stats");

const route = createRoute({
  method: "get",
  path: "/v1/stats",
  summary: "Class composition over time",
  description:
    "Counts come from the per-minute class_stats rollup keyed by each image's capture minute (UTC). " +
    "Buckets are UTC; images without capturedAt use their upload time. A key limited to some sites " +
    "only ever counts those sites.",
  security: BearerSecurity,
  request: { query: Query },
  responses: {
    200: { description: "Statistics", content: { "application/json": { schema: Stats } } },
    400: errorResponse("Bad window, bucket or threshold"),
    ...authResponses,
    403: errorResponse("`site` is not one of this API key's sites: code forbidden_site"),
  },
});

export function statsRoutes(deps: RouteDeps) {
  const app = createRouter();
  app.openapi(route, async (c) => {
    const q = c.req.valid("query");
    const scope = statsScope(principalOf(c), q.site);
    const to = q.to ? new Date(q.to) : new Date();
    const from = q.from ? new Date(q.from) : new Date(to.getTime() - BUCKET_MS.day);
    if (from >= to) throw new ApiError(400, "validation_error", "from must be before to");
    const buckets = Math.ceil((to.getTime() - from.getTime()) / BUCKET_MS[q.bucket]);
    if (buckets > deps.config.maxStatsBuckets) {
      throw new ApiError(
        400,
        "too_many_buckets",
        `${buckets} ${q.bucket} buckets requested, at most ${deps.config.maxStatsBuckets}: use a coarser bucket`,
      );
    }
    const stats = await getStats(deps.db, {
      from,
      to,
      bucket: q.bucket,
      ...scope,
      line: q.line ?? null,
      threshold: q.threshold ?? deps.config.lowConfidenceThreshold,
    });
    return c.json(
      {
        from: from.toISOString(),
        to: to.toISOString(),
        bucket: q.bucket,
        ...stats,
        series: stats.series.map((s) => ({ ...s, bucket: s.bucket.toISOString() })),
      },
      200,
    );
  });
  return app;
}
