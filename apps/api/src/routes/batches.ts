import { getBatch, listResults, REVIEW_REASONS } from "@garbage/db";
import { createRoute, z } from "@hono/zod-openapi";
import { ApiError } from "../errors";
import { principalOf, siteScope } from "../principal";
import { authResponses, BearerSecurity, createRouter, errorResponse } from "../router";
import { submitBatch } from "../submit";
import type { RouteDeps } from "../types";

const BatchStatus = z.enum(["queued", "processing", "completed", "completed_with_errors"]);

const Warning = z
  .object({
    index: z.number().int().openapi({ description: "The part's position in the upload" }),
    code: z.enum(["filename_shortened", "filename_replaced"]),
    message: z.string(),
  })
  .openapi("UploadWarning");
const Accepted = z
  .object({
    id: z.uuid(),
    status: BatchStatus,
    total: z.number().int(),
    warnings: z
      .array(Warning)
      .optional()
      .openapi({ description: "Present when some filenames were stored other than sent" }),
  })
  .openapi("BatchAccepted");

const BatchSchema = z
  .object({
    id: z.uuid(),
    status: BatchStatus,
    total: z.number().int(),
    processed: z.number().int().openapi({ description: "Images with a result, ok or failed" }),
    failed: z.number().int(),
    createdAt: z.iso.datetime(),
    completedAt: z.iso.datetime().nullable(),
  })
  .openapi("Batch");

const Top = z.object({ label: z.string(), confidence: z.number() });
const ResultItem = z
  .object({
    imageId: z.uuid(),
    filename: z.string().nullable(),
    status: z.enum(["queued", "ok", "failed"]),
    label: z.string().nullable(),
    confidence: z.number().nullable(),
    top: z.array(Top),
    needsReview: z.boolean().nullable().openapi({
      description:
        "The model asks for a person to check this label; false for failed results, null while queued",
    }),
    reviewReasons: z
      .array(z.enum(REVIEW_REASONS))
      .openapi({ description: "Why it needs review; empty otherwise" }),
    novelty: z.number().nullable().openapi({
      description: "k-NN cosine distance to the training data; null without reference embeddings or result",
    }),
    error: z.object({ code: z.string(), message: z.string().nullable() }).nullable(),
  })
  .openapi("ResultItem");

const IdParam = z.object({ id: z.uuid().openapi({ param: { name: "id", in: "path" } }) });

const createBatchRoute = createRoute({
  method: "post",
  path: "/v1/batches",
  summary: "Submit images for classification",
  description:
    "multipart/form-data with one or more `images` file parts and optional `site`, `line`, `camera`, " +
    "`capturedAt` (ISO 8601) fields. Files are streamed to storage; 202 once all are stored and enqueued. " +
    "Parts that are not images (by magic bytes) are accepted and recorded as failed (`unsupported_format`).",
  security: BearerSecurity,
  request: {
    headers: z.object({
      "idempotency-key": z
        .string()
        .min(1)
        .max(255)
        .regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces")
        .optional(),
    }),
    body: {
      required: true,
      content: {
        // A plain OpenAPI schema, not zod: a zod body would make the validator buffer the whole upload.
        "multipart/form-data": {
          schema: {
            type: "object",
            required: ["images"],
            properties: {
              images: { type: "array", items: { type: "string", format: "binary" } },
              site: { type: "string" },
              line: { type: "string" },
              camera: { type: "string" },
              capturedAt: { type: "string", format: "date-time" },
            },
          },
        },
      },
    },
  },
  responses: {
    202: {
      description: "Batch accepted (or replayed)",
      content: { "application/json": { schema: Accepted } },
    },
    400: errorResponse("Malformed upload, bad metadata, or no images"),
    ...authResponses,
    403: errorResponse("The API key may not submit to this site (or to no site): code forbidden_site"),
    413: errorResponse("A file, the file count or the request exceeds its limit"),
    415: errorResponse("Not multipart/form-data"),
    503: errorResponse("Storage or queue unavailable; nothing was kept"),
  },
});

const getBatchRoute = createRoute({
  method: "get",
  path: "/v1/batches/{id}",
  summary: "Batch progress",
  security: BearerSecurity,
  request: { params: IdParam },
  responses: {
    200: { description: "The batch", content: { "application/json": { schema: BatchSchema } } },
    400: errorResponse("Not a uuid"),
    ...authResponses,
    404: errorResponse("No such batch, or it belongs to a site this API key cannot see"),
  },
});

const listResultsRoute = createRoute({
  method: "get",
  path: "/v1/batches/{id}/results",
  summary: "Per-image results in upload order",
  description:
    "Every image is listed; those not processed yet have status `queued`. Pass `nextCursor` back as `cursor`. " +
    "`needsReview=true` lists the batch's review queue.",
  security: BearerSecurity,
  request: {
    params: IdParam,
    query: z.object({
      cursor: z
        .string()
        .regex(/^\d{1,9}$/, "a cursor from a previous page")
        .optional(),
      limit: z.coerce.number().int().min(1).max(1_000).default(100),
      needsReview: z
        .enum(["true", "false"])
        .optional()
        .openapi({ description: "Only recorded results with this needsReview (queued images never match)" }),
    }),
  },
  responses: {
    200: {
      description: "A page of results",
      content: {
        "application/json": {
          schema: z
            .object({ items: z.array(ResultItem), nextCursor: z.string().nullable() })
            .openapi("ResultPage"),
        },
      },
    },
    400: errorResponse("Bad id, cursor, limit or needsReview"),
    ...authResponses,
    404: errorResponse("No such batch, or it belongs to a site this API key cannot see"),
  },
});

export function batchesRoutes(deps: RouteDeps) {
  const app = createRouter();

  app.openapi(createBatchRoute, async (c) => {
    const key = c.req.valid("header")["idempotency-key"];
    try {
      const { batch, replayed, warnings } = await submitBatch(
        { ...deps, logger: c.get("log") },
        c.req.raw,
        principalOf(c),
        key,
      );
      deps.metrics.uploads.inc({ outcome: replayed ? "replayed" : "created" });
      if (replayed) c.header("Idempotent-Replayed", "true");
      const accepted = { id: batch.id, status: batch.status, total: batch.total };
      return c.json(warnings?.length ? { ...accepted, warnings } : accepted, 202);
    } catch (err) {
      const status = err instanceof ApiError ? err.status : 500;
      deps.metrics.uploads.inc({ outcome: status < 500 ? "rejected" : "failed" });
      throw err;
    }
  });

  app.openapi(getBatchRoute, async (c) => {
    const batch = await getBatch(deps.db, c.req.valid("param").id, siteScope(c));
    if (!batch) throw new ApiError(404, "not_found", "no such batch");
    return c.json(
      {
        id: batch.id,
        status: batch.status,
        total: batch.total,
        processed: batch.processed,
        failed: batch.failed,
        createdAt: batch.createdAt.toISOString(),
        completedAt: batch.completedAt?.toISOString() ?? null,
      },
      200,
    );
  });

  app.openapi(listResultsRoute, async (c) => {
    const { id } = c.req.valid("param");
    const { cursor, limit, needsReview } = c.req.valid("query");
    // Scoped here: listResults trusts that the batch was visible.
    const batch = await getBatch(deps.db, id, siteScope(c));
    if (!batch) throw new ApiError(404, "not_found", "no such batch");
    const page = await listResults(deps.db, id, {
      after: cursor === undefined ? null : Number(cursor),
      limit,
      needsReview: needsReview === undefined ? null : needsReview === "true",
    });
    return c.json(
      {
        items: page.items.map(({ index: _index, ...item }) => item),
        nextCursor: page.nextCursor === null ? null : String(page.nextCursor),
      },
      200,
    );
  });

  return app;
}
