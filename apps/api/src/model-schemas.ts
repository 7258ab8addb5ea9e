import {
  type Comparison as DbComparison,
  MODEL_FILE_ROLES,
  type ModelVersionRow,
  modelState,
} from "@garbage/db";
import { z } from "@hono/zod-openapi";

/** Schemas of /v1/models (routes/models.ts, routes/model-changes.ts) with the functions that fill them. */

/** The `{id}` of /v1/models/{id} routes (routes/models.ts and routes/model-changes.ts). */
export const VersionParam = z.object({
  id: z
    .string()
    .min(1)
    .max(300)
    .openapi({ param: { name: "id", in: "path" }, description: "The version's id or `name@version`" }),
});

const TrainedOn = z
  .object({
    sites: z.array(z.string()).nullable(),
    images: z.number().int(),
    perClass: z.record(z.string(), z.number()),
    source: z.string(),
  })
  .openapi("ModelTrainedOn");

export const ModelVersion = z
  .object({
    id: z.uuid(),
    name: z.string(),
    version: z.string(),
    modelVersion: z.string().openapi({ description: "`name@version`, what results record" }),
    sha256: z.string().openapi({ description: "sha256 of the float onnx" }),
    state: z.enum(modelState.enumValues),
    sites: z.array(z.string()).nullable().openapi({ description: "The version's scope; null = every site" }),
    trainedOn: TrainedOn.nullable(),
    dataUntil: z.iso.datetime().nullable().openapi({
      description: "Latest review time of its training images: reviews after it are unseen by the version",
    }),
    metrics: z.unknown().openapi({ description: "The manifest's metrics (the adapt run's evaluations)" }),
    files: z.array(
      z.object({ role: z.enum(MODEL_FILE_ROLES), key: z.string(), sha256: z.string(), bytes: z.number() }),
    ),
    int8: z.boolean().openapi({ description: "It has an int8 twin (served on CPUs)" }),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
    createdBy: z.string().nullable(),
  })
  .openapi("ModelVersion");

export const ModelVersionDetail = ModelVersion.extend({
  manifest: z.unknown(),
  int8Manifest: z.unknown().nullable(),
}).openapi("ModelVersionDetail");

export const Assignment = z
  .object({
    site: z.string().openapi({ description: "A site, or '*' for every site without its own" }),
    versionId: z.uuid(),
    modelVersion: z.string(),
    previousVersionId: z.uuid().nullable().openapi({
      description: "What a rollback restores; null: the row goes ('*' or the shipped default serves again)",
    }),
    assignedAt: z.iso.datetime(),
    assignedBy: z.string().nullable(),
  })
  .openapi("ModelAssignment");

export const VersionRef = z.object({ id: z.uuid(), modelVersion: z.string() }).openapi("ModelVersionRef");

export const Comparison = z
  .object({
    reviewed: z.object({
      images: z.number().int().openapi({
        description: "Reviewed after the candidate's data cut-off, predicted by both versions",
      }),
      candidate: z.object({ correct: z.number().int(), accuracy: z.number() }),
      active: z.object({ correct: z.number().int(), accuracy: z.number() }),
      perClass: z.array(
        z.object({
          label: z.string(),
          n: z.number().int(),
          candidateRecall: z.number(),
          activeRecall: z.number(),
        }),
      ),
    }),
    live: z.object({
      images: z.number().int(),
      agreement: z.number(),
      candidateReviewRate: z.number(),
      activeReviewRate: z.number(),
    }),
    changes: z.array(z.object({ from: z.string(), to: z.string(), n: z.number().int() })),
  })
  .openapi("ModelComparison");

export const Threshold = z
  .object({
    site: z.string(),
    modelVersion: z.string(),
    minConfidence: z.number(),
    maxDistance: z.number().nullable(),
    reviewed: z.number().int().openapi({ description: "Reviewed images the thresholds were fitted on" }),
    coverage: z.number().openapi({ description: "Share of them not flagged" }),
    unflaggedAccuracy: z.number().openapi({ description: "Estimated accuracy of the part not flagged" }),
    target: z.number(),
    computedAt: z.iso.datetime(),
  })
  .openapi("SiteThreshold");

export const PromotionRefused = z
  .object({
    code: z.string().openapi({ example: "candidate_worse" }),
    message: z.string(),
    requestId: z.string(),
    details: z.object({ comparison: Comparison }),
  })
  .openapi("PromotionRefused");

export const PromoteResult = z
  .object({
    version: ModelVersion,
    changes: z.array(z.object({ site: z.string(), from: VersionRef.nullable() })),
    retired: z.array(VersionRef),
    comparison: Comparison,
    forced: z.boolean().openapi({ description: "Promoted against a refusal" }),
  })
  .openapi("PromoteResult");

export const RollbackResult = z
  .object({
    changes: z.array(z.object({ site: z.string(), from: VersionRef, to: VersionRef.nullable() })),
    retired: z.array(VersionRef),
  })
  .openapi("RollbackResult");

export function toModelVersion(v: ModelVersionRow): z.infer<typeof ModelVersion> {
  return {
    id: v.id,
    name: v.name,
    version: v.version,
    modelVersion: v.modelVersion,
    sha256: v.sha256,
    state: v.state,
    sites: v.sites,
    trainedOn: v.trainedOn,
    dataUntil: v.dataUntil?.toISOString() ?? null,
    metrics: v.metrics,
    files: v.files,
    int8: v.files.some((f) => f.role === "int8"),
    createdAt: v.createdAt.toISOString(),
    updatedAt: v.updatedAt.toISOString(),
    createdBy: v.createdBy,
  };
}

export const toModelVersionDetail = (v: ModelVersionRow): z.infer<typeof ModelVersionDetail> => ({
  ...toModelVersion(v),
  manifest: v.manifest,
  int8Manifest: v.int8Manifest,
});

export const toComparison = (c: DbComparison): z.infer<typeof Comparison> => c;
