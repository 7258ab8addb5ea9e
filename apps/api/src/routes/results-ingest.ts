import { createRoute, z } from "@hono/zod-openapi";
import { ingestResults } from "../ingest-results";
import { principalOf } from "../principal";
import {
  authResponses,
  BearerSecurity,
  createRouter,
  errorResponse,
  IdempotencyKey,
  multipartBody,
} from "../router";
import { BatchStatus } from "../schemas";
import type { RouteDeps } from "../types";
import { countUpload } from "../upload-outcome";

const Ingested = z
  .object({ id: z.uuid(), status: BatchStatus, total: z.number().int(), processed: z.number().int() })
  .openapi("ResultsIngested");

const ingestRoute = createRoute({
  method: "post",
  path: "/v1/results",
  summary: "Record results a device classified itself (garbage agent --local)",
  description:
    "multipart/form-data: a `results` field (JSON `IngestResults`: site, line, camera, modelVersion, items) and " +
    "an `images` file part for each item with `image: true`, in the same order (the photos review and audit " +
    "need). Creates a completed batch whose results are stored and counted exactly like a worker's. " +
    "`Idempotency-Key` is required: a retry answers the first batch (`Idempotent-Replayed: true`).",
  security: BearerSecurity,
  request: {
    headers: z.object({ "idempotency-key": IdempotencyKey }),
    body: multipartBody({
      type: "object",
      required: ["results"],
      properties: {
        results: { type: "string", description: "JSON, the IngestResults schema" },
        images: { type: "array", items: { type: "string", format: "binary" } },
      },
    }),
  },
  responses: {
    201: {
      description: "Recorded (or replayed)",
      content: { "application/json": { schema: Ingested } },
    },
    400: errorResponse("Malformed upload, results or metadata; images parts that do not match the items"),
    ...authResponses,
    403: errorResponse("The API key may not submit to this site (or to no site): code forbidden_site"),
    409: errorResponse("An item id already belongs to another batch: code image_exists"),
    413: errorResponse("A file, the file count or the request exceeds its limit"),
    415: errorResponse("Not multipart/form-data"),
    503: errorResponse("Storage unavailable; nothing was kept"),
  },
});

export function resultsIngestRoutes(deps: RouteDeps) {
  const app = createRouter();
  app.openapi(ingestRoute, async (c) => {
    const key = c.req.valid("header")["idempotency-key"];
    const { batch } = await countUpload(c, deps.metrics.uploads, () =>
      ingestResults({ ...deps, logger: c.get("log") }, c.req.raw, principalOf(c), key),
    );
    return c.json(
      { id: batch.id, status: batch.status, total: batch.total, processed: batch.processed },
      201,
    );
  });
  return app;
}
