import { getBatch, listBatches, listResults } from "@garbage/db";
import { createRoute, z } from "@hono/zod-openapi";
import { CursorQuery, decodeCursor, encodeCursor } from "../cursor";
import { ApiError } from "../errors";
import { FILENAME_NOTE_CODES } from "../filename";
import { principalOf, siteScope } from "../principal";
import {
  authResponses,
  BearerSecurity,
  createRouter,
  errorResponse,
  IdempotencyKey,
  multipartBody,
} from "../router";
import { BatchSchema, BatchStatus, ResultItem, toBatch, toResultItem } from "../schemas";
import { submitBatch } from "../submit";
import { plainText } from "../text";
import type { RouteDeps } from "../types";
import { countUpload } from "../upload-outcome";

const Warning = z
  .object({
    index: z.number().int().openapi({ description: "The part's position in the upload" }),
    code: z.enum(FILENAME_NOTE_CODES),
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

const IdParam = z.object({ id: z.uuid().openapi({ param: { name: "id", in: "path" } }) });

const createBatchRoute = createRoute({
  method: "post",
  path: "/v1/batches",
  summary: "Submit images for classification",
  description:
    "multipart/form-data with one or more `images` file parts and optional `site`, `line`, `camera`, " +
    "`capturedAt` (ISO 8601) fields, and `imageCapturedAt` for a time per image. Files are streamed to " +
    "storage; 202 once all are stored and enqueued. " +
    "Parts that are not images (by magic bytes) are accepted and recorded as failed (`unsupported_format`).",
  security: BearerSecurity,
  request: {
    headers: z.object({ "idempotency-key": IdempotencyKey.optional() }),
    body: multipartBody({
      type: "object",
      required: ["images"],
      properties: {
        images: { type: "array", items: { type: "string", format: "binary" } },
        site: { type: "string" },
        line: { type: "string" },
        camera: { type: "string" },
        capturedAt: { type: "string", format: "date-time" },
        imageCapturedAt: {
          type: "string",
          description:
            "JSON array with one ISO 8601 time (or null) per `images` part, in order: each image's " +
            "capture time (default: capturedAt)",
        },
      },
    }),
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
      label: plainText()
        .optional()
        .openapi({ description: "Only ok results whose effective label (reviewed, else model) is this" }),
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
    400: errorResponse("Bad id, cursor, limit, needsReview or label"),
    ...authResponses,
    404: errorResponse("No such batch, or it belongs to a site this API key cannot see"),
  },
});

const listBatchesRoute = createRoute({
  method: "get",
  path: "/v1/batches",
  summary: "Recent batches, newest first",
  description: "Only batches of the API key's sites. Pass `nextCursor` back as `cursor`.",
  security: BearerSecurity,
  request: {
    query: z.object({
      limit: z.coerce.number().int().min(1).max(200).default(20),
      cursor: CursorQuery,
      site: plainText().optional(),
    }),
  },
  responses: {
    200: {
      description: "A page of batches",
      content: {
        "application/json": {
          schema: z
            .object({ items: z.array(BatchSchema), nextCursor: z.string().nullable() })
            .openapi("BatchPage"),
        },
      },
    },
    400: errorResponse("Bad limit or cursor"),
    ...authResponses,
  },
});

export function batchesRoutes(deps: RouteDeps) {
  const app = createRouter();

  app.openapi(createBatchRoute, async (c) => {
    const key = c.req.valid("header")["idempotency-key"];
    const { batch, warnings } = await countUpload(c, deps.metrics.uploads, () =>
      submitBatch({ ...deps, logger: c.get("log") }, c.req.raw, principalOf(c), key),
    );
    const accepted = { id: batch.id, status: batch.status, total: batch.total };
    return c.json(warnings?.length ? { ...accepted, warnings } : accepted, 202);
  });

  app.openapi(listBatchesRoute, async (c) => {
    const q = c.req.valid("query");
    // A site outside the key's scope simply lists nothing, as if it had no batches.
    const page = await listBatches(deps.db, {
      sites: siteScope(c),
      site: q.site ?? null,
      before: decodeCursor(q.cursor),
      limit: q.limit,
    });
    return c.json({ items: page.items.map(toBatch), nextCursor: encodeCursor(page.next) }, 200);
  });

  app.openapi(getBatchRoute, async (c) => {
    const batch = await getBatch(deps.db, c.req.valid("param").id, siteScope(c));
    if (!batch) throw new ApiError(404, "not_found", "no such batch");
    return c.json(toBatch(batch), 200);
  });

  app.openapi(listResultsRoute, async (c) => {
    const { id } = c.req.valid("param");
    const { cursor, limit, needsReview, label } = c.req.valid("query");
    // Scoped here: listResults trusts that the batch was visible.
    const batch = await getBatch(deps.db, id, siteScope(c));
    if (!batch) throw new ApiError(404, "not_found", "no such batch");
    const page = await listResults(deps.db, id, {
      after: cursor === undefined ? null : Number(cursor),
      limit,
      needsReview: needsReview === undefined ? null : needsReview === "true",
      label: label ?? null,
    });
    return c.json(
      {
        items: page.items.map(toResultItem),
        nextCursor: page.nextCursor === null ? null : String(page.nextCursor),
      },
      200,
    );
  });

  return app;
}
