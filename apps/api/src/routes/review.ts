import { listReviewQueue, writeReview } from "@garbage/db";
import { createRoute, z } from "@hono/zod-openapi";
import { CursorQuery, decodeCursor, encodeCursor } from "../cursor";
import { ApiError } from "../errors";
import { principalOf, reviewerOf, siteScope } from "../principal";
import { authResponses, BearerSecurity, createRouter, errorResponse } from "../router";
import { Novelty, Reasons, Top } from "../schemas";
import { plainText } from "../text";
import type { RouteDeps } from "../types";

const itemBase = {
  imageId: z.uuid(),
  batchId: z.uuid(),
  filename: z.string().nullable(),
  site: z.string().nullable(),
  line: z.string().nullable(),
  createdAt: z.iso.datetime().openapi({ description: "When the image was uploaded" }),
};

const ReviewItem = z
  .object({
    kind: z.literal("review"),
    ...itemBase,
    label: z.string().openapi({ description: "The model's label" }),
    confidence: z.number(),
    top: z.array(Top),
    reviewReasons: Reasons,
    novelty: Novelty,
  })
  .openapi("ReviewItem");

const AuditItem = z.object({ kind: z.literal("audit"), ...itemBase }).openapi("AuditItem", {
  description:
    "A blind audit (AUDIT_RATE): deliberately without the model's label, confidence, top or flags, so the " +
    "answer is not anchored on them. Answer it with PUT /v1/results/{imageId}/review like a review.",
});

const queueRoute = createRoute({
  method: "get",
  path: "/v1/review",
  summary: "The review queue: flagged results and blind audits nobody has answered yet, oldest image first",
  description:
    "Only images of the API key's sites. Pass `nextCursor` back as `cursor`. `kind=review`: images the model " +
    "flagged; `kind=audit`: blind audits (no model label); default both, since a person working the queue " +
    "should see everything that waits. A flagged image that was also picked for audit is shown once, as an audit.",
  security: BearerSecurity,
  request: {
    query: z.object({
      site: plainText().optional(),
      line: plainText().optional(),
      kind: z.enum(["review", "audit", "all"]).default("all"),
      limit: z.coerce.number().int().min(1).max(500).default(50),
      cursor: CursorQuery,
    }),
  },
  responses: {
    200: {
      description: "A page of the queue",
      content: {
        "application/json": {
          schema: z
            .object({
              items: z.array(z.discriminatedUnion("kind", [ReviewItem, AuditItem])),
              nextCursor: z.string().nullable(),
              remaining: z.number().int().openapi({ description: "The whole queue under these filters" }),
            })
            .openapi("ReviewQueue"),
        },
      },
    },
    400: errorResponse("Bad limit, cursor, site or line"),
    ...authResponses,
  },
});

const ReviewBody = z
  .object({
    label: z.string().min(1).max(200).openapi({ description: "One of the serving model's classes" }),
    reviewer: plainText(100).optional().openapi({ description: "The person's name as typed in the UI" }),
  })
  .openapi("ReviewRequest");

const Reviewed = z
  .object({
    imageId: z.uuid(),
    modelLabel: z.string(),
    label: z.string(),
    changed: z.boolean().openapi({ description: "label differs from modelLabel" }),
    reviewer: z.string().openapi({ description: "The typed name, else the API key's name or principal" }),
    reviewedAt: z.iso.datetime(),
  })
  .openapi("StoredReview");

const putRoute = createRoute({
  method: "put",
  path: "/v1/results/{imageId}/review",
  summary: "Confirm or correct the model's label of one image, or answer its blind audit",
  description:
    "Stores who (the API key and the typed name) and when; the result keeps the model's label. Reviewing " +
    "again replaces the earlier review. Statistics move the image to the reviewed label at once; for an " +
    "audited image the answer is also the truth its audit gives /v1/stats' `quality` estimates.",
  security: BearerSecurity,
  request: {
    params: z.object({ imageId: z.uuid().openapi({ param: { name: "imageId", in: "path" } }) }),
    body: { required: true, content: { "application/json": { schema: ReviewBody } } },
  },
  responses: {
    200: { description: "The stored review", content: { "application/json": { schema: Reviewed } } },
    400: errorResponse("Not a uuid, or a label that is not one of the model's classes: code unknown_label"),
    ...authResponses,
    404: errorResponse("No such image, or its site is not one of this API key's"),
    409: errorResponse("The image has no ok result yet (queued or failed): code not_reviewable"),
    503: errorResponse("The API has no model manifest, so it cannot check the label: code model_unavailable"),
  },
});

export function reviewRoutes(deps: RouteDeps) {
  const app = createRouter();

  app.openapi(queueRoute, async (c) => {
    const q = c.req.valid("query");
    const page = await listReviewQueue(deps.db, {
      sites: siteScope(c),
      site: q.site ?? null,
      line: q.line ?? null,
      kind: q.kind,
      after: decodeCursor(q.cursor),
      limit: q.limit,
    });
    return c.json(
      {
        items: page.items.map((i) => ({ ...i, createdAt: i.createdAt.toISOString() })),
        nextCursor: encodeCursor(page.next),
        remaining: page.remaining,
      },
      200,
    );
  });

  app.openapi(putRoute, async (c) => {
    const { imageId } = c.req.valid("param");
    const body = c.req.valid("json");
    const classes = deps.model?.classes;
    if (!classes) {
      throw new ApiError(
        503,
        "model_unavailable",
        "no model manifest is loaded, so labels cannot be checked",
      );
    }
    if (!classes.includes(body.label)) {
      throw new ApiError(400, "unknown_label", `label must be one of ${classes.join(", ")}`);
    }
    const principal = principalOf(c);
    const typed = body.reviewer?.trim() || null;
    const outcome = await writeReview(deps.db, {
      imageId,
      label: body.label,
      reviewer: reviewerOf(principal),
      reviewerName: typed,
      sites: principal.sites,
    });
    if (outcome.kind === "not_found") throw new ApiError(404, "not_found", "no such image");
    if (outcome.kind === "not_reviewable") {
      throw new ApiError(
        409,
        "not_reviewable",
        `the image has no ok result to review (it is ${outcome.status})`,
      );
    }
    const r = outcome.review;
    return c.json(
      {
        imageId: r.imageId,
        modelLabel: r.modelLabel,
        label: r.label,
        changed: r.changed,
        reviewer: r.reviewerName ?? r.reviewer,
        reviewedAt: r.reviewedAt.toISOString(),
      },
      200,
    );
  });

  return app;
}
