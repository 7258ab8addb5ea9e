import { getStats } from "@garbage/db";
import type { QualityEstimate } from "@garbage/stats";
import { createRoute, z } from "@hono/zod-openapi";
import { toCsv } from "../csv";
import { ApiError, validationError } from "../errors";
import { type Principal, principalOf, statsScope } from "../principal";
import { BucketQualitySchema, QualitySchema, readQuality } from "../quality";
import { authResponses, BearerSecurity, createRouter, DownloadSecurity, errorResponse } from "../router";
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
const reviewed = z.number().int().openapi({ description: "ok results a person reviewed" });
const changed = z
  .number()
  .int()
  .openapi({ description: "Reviewed results whose label the person changed (counted under the new label)" });
const changedRate = z
  .number()
  .nullable()
  .openapi({ description: "changed / reviewed, an accuracy estimate; null when nothing was reviewed" });

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
    reviewed,
    changed,
    changedRate,
    classes: z.array(
      z.object({
        label: z.string(),
        count: z.number().int(),
        share: z.number().openapi({ description: "count / classified" }),
        lowConfidence: z.number().int(),
        needsReview: z.number().int(),
        reviewRate: reviewRate("count"),
        reviewed,
        changed,
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
        reviewed,
        changed,
        changedRate,
        quality: BucketQualitySchema.nullable().openapi({
          description: "The bucket's audit estimate of accuracy; null when it has no answered audit",
        }),
      }),
    ),
    quality: QualitySchema.openapi({
      description:
        "Estimates from blind audits (AUDIT_RATE): accuracy, accuracy of the unflagged part, per-class " +
        "precision and corrected shares with 95 % intervals; null and `needed` when there are too few audits",
    }),
  })
  .openapi("Stats");

const route = createRoute({
  method: "get",
  path: "/v1/stats",
  summary: "Class composition over time",
  description:
    "Counts come from the per-minute class_stats rollup keyed by each image's capture minute (UTC), under " +
    "each image's effective label: the reviewer's where a person reviewed it, else the model's. " +
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

const csvRoute = createRoute({
  method: "get",
  path: "/v1/stats.csv",
  summary: "Class composition over time as CSV",
  description:
    "The same query as /v1/stats; one row per bucket and class: `bucket,class,count,share,needs_review," +
    "reviewed,changed` (share of the bucket's classified images; failures are not a class), then the audit " +
    "estimates: `corrected_share,corrected_low,corrected_high,precision,precision_low,precision_high," +
    "accuracy,accuracy_low,accuracy_high` (the bucket's; empty where its audits are too few), and one row per " +
    "class with bucket `total` for the whole range.",
  security: DownloadSecurity,
  request: { query: Query },
  responses: {
    200: {
      description: "CSV, Content-Disposition: attachment",
      content: { "text/csv": { schema: { type: "string" } } },
    },
    400: errorResponse("Bad window, bucket or threshold"),
    ...authResponses,
    403: errorResponse("`site` is not one of this API key's sites: code forbidden_site"),
  },
});

/** The window and sites a query reads; throws what the routes answer for a query they refuse. */
function statsWindow(deps: RouteDeps, principal: Principal, q: z.infer<typeof Query>) {
  const scope = statsScope(principal, q.site);
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
  return { scope, from, to };
}

/**
 * Refuses, as /v1/stats.csv would, a query it would refuse: a download link is checked when it is asked
 * for, while the page can still say why, not when the browser follows it.
 */
export function checkStatsQuery(deps: RouteDeps, principal: Principal, params: URLSearchParams): void {
  const parsed = Query.safeParse(Object.fromEntries(params));
  if (!parsed.success) throw validationError(parsed.error);
  statsWindow(deps, principal, parsed.data);
}

async function readStats(deps: RouteDeps, principal: Principal, q: z.infer<typeof Query>) {
  const { scope, from, to } = statsWindow(deps, principal, q);
  const stats = await getStats(deps.db, {
    from,
    to,
    bucket: q.bucket,
    ...scope,
    line: q.line ?? null,
    threshold: q.threshold ?? deps.config.lowConfidenceThreshold,
  });
  const quality = await readQuality(deps, { from, to, bucket: q.bucket, ...scope, line: q.line ?? null });
  return { from, to, stats, quality };
}

export function statsRoutes(deps: RouteDeps) {
  const app = createRouter();
  app.openapi(route, async (c) => {
    const q = c.req.valid("query");
    const { from, to, stats, quality } = await readStats(deps, principalOf(c), q);
    const { cells: _cells, ...rest } = stats;
    return c.json(
      {
        from: from.toISOString(),
        to: to.toISOString(),
        bucket: q.bucket,
        ...rest,
        series: stats.series.map((s) => {
          const b = quality.buckets.get(s.bucket.getTime());
          return {
            ...s,
            bucket: s.bucket.toISOString(),
            quality: b ? { audited: b.audited, needed: b.needed, accuracy: b.accuracy } : null,
          };
        }),
        quality: quality.quality,
      },
      200,
    );
  });

  app.openapi(csvRoute, async (c) => {
    const q = c.req.valid("query");
    const { stats, quality } = await readStats(deps, principalOf(c), q);
    const classified = new Map(stats.series.map((s) => [s.bucket.getTime(), s.total - s.failed]));
    const estimates = (q: QualityEstimate | undefined, label: string) => {
      const c = q?.classes.find((k) => k.label === label);
      return [c?.share, c?.precision, q?.accuracy].flatMap((i) => [
        i?.estimate ?? "",
        i?.low ?? "",
        i?.high ?? "",
      ]);
    };
    const rows = stats.cells
      .filter((cell) => cell.label !== "")
      .map((cell) => [
        cell.bucket.toISOString(),
        cell.label,
        cell.count,
        cell.count / (classified.get(cell.bucket.getTime()) || 1),
        cell.needsReview,
        cell.reviewed,
        cell.changed,
        ...estimates(quality.buckets.get(cell.bucket.getTime()), cell.label),
      ]);
    for (const k of stats.classes) {
      const total = quality.quality;
      rows.push([
        "total",
        k.label,
        k.count,
        k.share,
        k.needsReview,
        k.reviewed,
        k.changed,
        ...estimates(total, k.label),
      ]);
    }
    const body = toCsv(
      [
        ...["bucket", "class", "count", "share", "needs_review", "reviewed", "changed"],
        ...[
          "corrected_share",
          "corrected_low",
          "corrected_high",
          "precision",
          "precision_low",
          "precision_high",
        ],
        ...["accuracy", "accuracy_low", "accuracy_high"],
      ],
      rows,
    );
    return c.body(body, 200, {
      "Content-Type": "text/csv; charset=utf-8",
      "Content-Disposition": `attachment; filename="stats-${q.bucket}.csv"`,
    });
  });
  return app;
}
