import { createRoute, z } from "@hono/zod-openapi";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ApiError } from "../errors";
import { authResponses, BearerSecurity, createRouter, errorResponse, multipartBody } from "../router";
import { readSingleImage } from "../single-image";
import { sniffImageType } from "../sniff";
import type { RouteDeps } from "../types";

const Scored = z.object({ label: z.string(), confidence: z.number() });
const Review = z
  .object({
    lowConfidence: z
      .boolean()
      .openapi({ description: "Calibrated confidence below the model's review threshold" }),
    unfamiliar: z.boolean().openapi({
      description:
        "Farther from the training data than the model's threshold; false without reference embeddings",
    }),
    distance: z.number().nullable().openapi({
      description: "k-NN cosine distance to the training embeddings; null when the model ships none",
    }),
  })
  .openapi("Review");
const Classification = z
  .object({
    label: z.string(),
    confidence: z.number(),
    top: z.array(Scored).openapi({ description: "Best three classes, most likely first" }),
    needsReview: z
      .boolean()
      .openapi({ description: "A person should check this label: lowConfidence or unfamiliar" }),
    review: Review,
    model: z.object({ name: z.string(), version: z.string() }),
  })
  .openapi("Classification");

const route = createRoute({
  method: "post",
  path: "/v1/classify",
  summary: "Classify one image synchronously",
  description:
    "multipart/form-data with one `image` part, or the raw image as the body with an image/* content type.",
  security: BearerSecurity,
  request: {
    body: multipartBody(
      { type: "object", required: ["image"], properties: { image: { type: "string", format: "binary" } } },
      { "image/*": { schema: { type: "string", format: "binary" } } },
    ),
  },
  responses: {
    200: {
      description: "Top-3 classes",
      headers: z.object({
        "server-timing": z.string().openapi({
          description:
            "ms spent reading the upload (read), waiting for a model batch (wait), decoding (decode), in " +
            "session.run (infer), passing to and from the model thread (thread) and in the handler (app)",
          example:
            "read;dur=1.10, wait;dur=0.02, decode;dur=6.90, infer;dur=34.20, thread;dur=0.50, app;dur=44.30",
        }),
        "x-model-batch-size": z.string().openapi({ description: "Images in this image's session.run" }),
      }),
      content: { "application/json": { schema: Classification } },
    },
    400: errorResponse("No image"),
    ...authResponses,
    413: errorResponse("Image too large (bytes or pixels)"),
    415: errorResponse("Not an image"),
    422: errorResponse("Image could not be decoded"),
    503: errorResponse("No model loaded, or the model's queue is full (Retry-After says when to retry)"),
  },
});

// Classifier error codes (see @garbage/inference ImageError) to HTTP statuses.
const STATUS: Record<string, ContentfulStatusCode> = {
  too_large: 413,
  too_many_pixels: 413,
  unsupported_format: 415,
  corrupt: 422,
  unreadable: 422,
  timeout: 503,
};

/** The classifier's QueueFullError (matched by name: the API does not import the inference thread). */
function overloaded(err: unknown): unknown {
  const e = err as { name?: string; message?: string; retryAfterS?: number };
  if (e?.name !== "QueueFullError") return err;
  return new ApiError(
    503,
    "overloaded",
    e.message ?? "the model queue is full",
    undefined,
    e.retryAfterS ?? 1,
  );
}

export function classifyRoutes(deps: RouteDeps) {
  const app = createRouter();
  app.openapi(route, async (c) => {
    const classifier = deps.classifier;
    if (!classifier) throw new ApiError(503, "model_unavailable", "no model is loaded in this API process");
    const start = performance.now();
    const image = await readSingleImage(c.req.raw, deps.config.limits.maxFileBytes);
    const readMs = performance.now() - start;
    if (!sniffImageType(image)) {
      throw new ApiError(
        415,
        "unsupported_format",
        "not a supported image (jpeg, png, webp, gif, tiff, avif, heif)",
      );
    }
    const stop = deps.metrics.classifyDuration.startTimer();
    const [outcome] = await classifier.classify([image], { topK: 3 }).catch((err: unknown) => {
      stop({ outcome: "refused" });
      throw overloaded(err);
    });
    if (!outcome?.ok) {
      stop({ outcome: "failed" });
      const error = outcome?.error ?? { code: "corrupt", message: "no result" };
      throw new ApiError(STATUS[error.code] ?? 422, error.code, error.message);
    }
    stop({ outcome: "ok" });
    // Where this request's time went inside the process, for `npm run bench -- classify` and browsers' devtools.
    const t = outcome.timings;
    const timing: [string, number][] = [["read", readMs]];
    if (t) {
      timing.push(
        ["wait", t.waitMs],
        ["decode", t.decodeMs],
        ["infer", t.inferenceMs],
        ["thread", t.threadMs],
      );
    }
    timing.push(["app", performance.now() - start]);
    c.header("Server-Timing", timing.map(([name, ms]) => `${name};dur=${ms.toFixed(2)}`).join(", "));
    if (t) c.header("X-Model-Batch-Size", String(t.batchSize));
    return c.json(
      {
        label: outcome.label,
        confidence: outcome.confidence,
        top: outcome.top.slice(0, 3).map(({ label, confidence }) => ({ label, confidence })),
        needsReview: outcome.needsReview,
        review: {
          lowConfidence: outcome.review.lowConfidence,
          unfamiliar: outcome.review.unfamiliar,
          distance: outcome.review.distance,
        },
        model: { name: classifier.manifest.name, version: classifier.manifest.version },
      },
      200,
    );
  });
  return app;
}
