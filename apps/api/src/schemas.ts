import { type Batch, REVIEW_REASONS, type ResultItem as ResultRow } from "@garbage/db";
import { z } from "@hono/zod-openapi";

/** Response schemas shared by several route files, with the functions that fill them. */

export const BatchStatus = z.enum(["queued", "processing", "completed", "completed_with_errors"]);

export const BatchSchema = z
  .object({
    id: z.uuid(),
    status: BatchStatus,
    total: z.number().int(),
    processed: z.number().int().openapi({ description: "Images with a result, ok or failed" }),
    failed: z.number().int(),
    site: z.string().nullable(),
    line: z.string().nullable(),
    camera: z.string().nullable(),
    createdAt: z.iso.datetime(),
    completedAt: z.iso.datetime().nullable(),
  })
  .openapi("Batch");

export const toBatch = (b: Batch): z.infer<typeof BatchSchema> => ({
  id: b.id,
  status: b.status,
  total: b.total,
  processed: b.processed,
  failed: b.failed,
  site: b.site,
  line: b.line,
  camera: b.camera,
  createdAt: b.createdAt.toISOString(),
  completedAt: b.completedAt?.toISOString() ?? null,
});

export const Top = z.object({ label: z.string(), confidence: z.number() });
export const Reasons = z
  .array(z.enum(REVIEW_REASONS))
  .openapi({ description: "Why it needs review; empty otherwise" });
export const Novelty = z.number().nullable().openapi({
  description: "k-NN cosine distance to the training data; null without reference embeddings or result",
});

export const ResultItem = z
  .object({
    imageId: z.uuid(),
    filename: z.string().nullable(),
    status: z.enum(["queued", "ok", "failed"]),
    label: z
      .string()
      .nullable()
      .openapi({ description: "The model's label (kept when a person corrects it)" }),
    confidence: z.number().nullable(),
    top: z.array(Top),
    needsReview: z.boolean().nullable().openapi({
      description:
        "The model asks for a person to check this label; false for failed results, null while queued",
    }),
    reviewReasons: Reasons,
    novelty: Novelty,
    error: z.object({ code: z.string(), message: z.string().nullable() }).nullable(),
    review: z
      .object({
        label: z.string(),
        reviewer: z
          .string()
          .openapi({ description: "The name typed by the person, else the API key's name" }),
        reviewedAt: z.iso.datetime(),
      })
      .nullable()
      .openapi({ description: "A person's verdict; null until reviewed" }),
    effectiveLabel: z.string().nullable().openapi({
      description: "The reviewed label when there is one, else the model's; null unless status is ok",
    }),
  })
  .openapi("ResultItem");

export const toResultItem = ({ index: _index, review, ...item }: ResultRow): z.infer<typeof ResultItem> => ({
  ...item,
  review: review ? { ...review, reviewedAt: review.reviewedAt.toISOString() } : null,
});
