import { getBatch, listResults, type ResultItem as ResultRow } from "@garbage/db";
import { createRoute, z } from "@hono/zod-openapi";
import { toCsv } from "../csv";
import { ApiError } from "../errors";
import { type Principal, siteScope } from "../principal";
import { authResponses, createRouter, DownloadSecurity, errorResponse } from "../router";
import { BatchSchema, ResultItem, toBatch, toResultItem } from "../schemas";
import type { RouteDeps } from "../types";

const IdParam = z.object({ id: z.uuid().openapi({ param: { name: "id", in: "path" } }) });
const PAGE = 1_000;

const errors = {
  400: errorResponse("Not a uuid"),
  ...authResponses,
  404: errorResponse("No such batch, or it belongs to a site this API key cannot see"),
};

const jsonRoute = createRoute({
  method: "get",
  path: "/v1/batches/{id}/results.json",
  summary: "Every result of a batch as a JSON download",
  security: DownloadSecurity,
  request: { params: IdParam },
  responses: {
    200: {
      description: "The batch and all its results in upload order; Content-Disposition: attachment",
      content: {
        "application/json": {
          schema: z.object({ batch: BatchSchema, items: z.array(ResultItem) }).openapi("ResultsDownload"),
        },
      },
    },
    ...errors,
  },
});

const CSV_HEADER = [
  "image_id",
  "filename",
  "status",
  "label",
  "confidence",
  "effective_label",
  "reviewed_label",
  "reviewer",
  "reviewed_at",
  "needs_review",
  "review_reasons",
  "novelty",
  "top",
  "error_code",
  "error_message",
];

const csvRoute = createRoute({
  method: "get",
  path: "/v1/batches/{id}/results.csv",
  summary: "Every result of a batch as a CSV download",
  description: `Columns: ${CSV_HEADER.join(", ")}. \`label\` is the model's; \`top\` is \`label:confidence\` pairs.`,
  security: DownloadSecurity,
  request: { params: IdParam },
  responses: {
    200: {
      description: "CSV in upload order; Content-Disposition: attachment",
      content: { "text/csv": { schema: { type: "string" } } },
    },
    ...errors,
  },
});

/**
 * The batch, if the caller may see it (else 404), and every page of its results (bounded by the batch size the
 * API accepted).
 */
async function batchWithResults(deps: RouteDeps, sites: Principal["sites"], batchId: string) {
  const batch = await getBatch(deps.db, batchId, sites);
  if (!batch) throw new ApiError(404, "not_found", "no such batch");
  const items: ResultRow[] = [];
  let after: number | null = null;
  do {
    const page = await listResults(deps.db, batchId, { after, limit: PAGE });
    items.push(...page.items);
    after = page.nextCursor;
  } while (after !== null);
  return { batch, items };
}

const attachment = (id: string, ext: string) => `attachment; filename="batch-${id}-results.${ext}"`;

export function downloadRoutes(deps: RouteDeps) {
  const app = createRouter();

  app.openapi(jsonRoute, async (c) => {
    const { id } = c.req.valid("param");
    const { batch, items } = await batchWithResults(deps, siteScope(c), id);
    c.header("Content-Disposition", attachment(id, "json"));
    return c.json({ batch: toBatch(batch), items: items.map(toResultItem) }, 200);
  });

  app.openapi(csvRoute, async (c) => {
    const { id } = c.req.valid("param");
    const { items } = await batchWithResults(deps, siteScope(c), id);
    const rows = items.map((r) => [
      r.imageId,
      r.filename,
      r.status,
      r.label,
      r.confidence,
      r.effectiveLabel,
      r.review?.label,
      r.review?.reviewer,
      r.review?.reviewedAt.toISOString(),
      r.needsReview,
      r.reviewReasons.join(" "),
      r.novelty,
      r.top.map((t) => `${t.label}:${t.confidence}`).join(" "),
      r.error?.code,
      r.error?.message,
    ]);
    return c.body(toCsv(CSV_HEADER, rows), 200, {
      "Content-Type": "text/csv; charset=utf-8",
      "Content-Disposition": attachment(id, "csv"),
    });
  });

  return app;
}
