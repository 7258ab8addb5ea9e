import {
  type Batch,
  createBatch,
  getBatchByIdempotencyKey,
  type NewImage,
  type ResultInput,
  recordResults,
} from "@garbage/db";
import { z } from "@hono/zod-openapi";
import { ApiError, validationError } from "./errors";
import { assertMaySubmit, type Principal } from "./principal";
import { plainText } from "./text";
import type { RouteDeps } from "./types";
import { receiveUpload } from "./upload";

const name = z.string().trim().min(1).pipe(plainText());
const Score = z.object({ label: name, confidence: z.number().min(0).max(1) });

export const IngestItem = z
  .object({
    id: z.uuid().openapi({ description: "The image's id, chosen by the device (stable across retries)" }),
    filename: plainText(255).nullish(),
    capturedAt: z.iso.datetime({ offset: true }),
    sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .nullish(),
    bytes: z.number().int().min(0),
    image: z.boolean().default(false).openapi({
      description: "An `images` file part carries this image (the n-th such item, the n-th part)",
    }),
    status: z.enum(["ok", "failed"]),
    label: name.nullish(),
    confidence: z.number().min(0).max(1).nullish(),
    top: z.array(Score).max(20).nullish(),
    review: z
      .object({
        needsReview: z.boolean(),
        lowConfidence: z.boolean(),
        unfamiliar: z.boolean(),
        distance: z.number().nullable(),
      })
      .nullish(),
    inferenceMs: z.number().min(0).nullish(),
    error: z.object({ code: plainText(100), message: plainText(1_000) }).nullish(),
    embedding: z
      .string()
      .max(200_000)
      .nullish()
      .openapi({ description: "The model's features, little-endian float32, base64 (similar-image search)" }),
  })
  .openapi("IngestItem");

export const IngestBody = z
  .object({
    site: name.optional(),
    line: name.optional(),
    camera: name.optional(),
    modelVersion: name.openapi({ description: "The model that classified them, as `name@version`" }),
    auditRate: z
      .number()
      .min(0)
      .max(1)
      .default(0)
      .openapi({
        description:
          "The blind-audit rate the device sampled with (its photos of the audit pick are in the upload): each ok " +
          "result is picked with the API's rule, auditPicked(id, rate), and recorded with this rate",
      }),
    items: z.array(IngestItem).min(1).max(100_000),
  })
  .strict()
  .openapi("IngestResults");

/** Results JSON with an embedding per flagged image is far larger than a name. */
const RESULTS_FIELD_BYTES = 16 * 1024 * 1024;

export interface Ingested {
  batch: Batch;
  replayed: boolean;
}

/**
 * POST /v1/results: a device that classified its photos itself sends the outcomes, plus the photos a person
 * must see (flagged ones, audit picks). One transaction creates the batch, its image rows (stored or not) and
 * records the results with recordResults, so they are counted exactly like a worker's: once, with the rollup.
 * The Idempotency-Key makes a retry return the first batch; nothing is written twice.
 */
export async function ingestResults(
  deps: RouteDeps,
  req: Request,
  principal: Principal,
  idempotencyKey: string,
): Promise<Ingested> {
  const { db, store } = deps;
  const existing = await getBatchByIdempotencyKey(db, principal.id, idempotencyKey);
  if (existing) {
    assertMaySubmit(principal, existing.site);
    return { batch: existing, replayed: true };
  }
  const batchId = crypto.randomUUID();
  const upload = await receiveUpload(req, {
    store,
    limits: deps.config.limits,
    batchId,
    idle: deps.config.uploadIdle,
    fieldSize: RESULTS_FIELD_BYTES,
    filesOptional: true,
  });
  const cleanup = () => Promise.allSettled(upload.storedKeys.map((key) => store.delete(key)));
  try {
    const body = parseBody(upload.fields);
    assertMaySubmit(principal, body.site);
    const withImage = body.items.filter((item) => item.image);
    if (withImage.length !== upload.images.length) {
      throw new ApiError(
        400,
        "validation_error",
        `${withImage.length} items say image: true, ${upload.images.length} images parts came`,
      );
    }
    const parts = new Map(withImage.map((item, i) => [item.id, upload.images[i]]));
    const images: NewImage[] = body.items.map((item, index) => {
      const part = parts.get(item.id);
      return {
        id: item.id,
        index,
        filename: item.filename ?? part?.filename ?? null,
        // Not stored: the device kept the photo (results only); a stored part that was not an image neither.
        storageKey: part && !part.rejected ? part.storageKey : null,
        bytes: part && !part.rejected ? part.bytes : item.bytes,
        sha256: (part && !part.rejected ? part.sha256 : item.sha256) ?? null,
        contentType: part && !part.rejected ? (part.contentType ?? null) : null,
        capturedAt: new Date(item.capturedAt),
      };
    });
    const rows: ResultInput[] = body.items.map((item) => toResult(item, body.modelVersion, body.auditRate));
    const outcome = await db.transaction(async (tx) => {
      const created = await createBatch(tx, {
        id: batchId,
        principal: principal.id,
        idempotencyKey,
        site: body.site ?? null,
        line: body.line ?? null,
        camera: body.camera ?? null,
        capturedAt: null,
        images,
      });
      if (created.created) await recordResults(tx, rows);
      return created;
    });
    if (!outcome.created) {
      // A concurrent retry under the same key won: keep its batch, drop our copies.
      await cleanup();
      return { batch: outcome.batch, replayed: true };
    }
    const fresh = await getBatchByIdempotencyKey(db, principal.id, idempotencyKey);
    return { batch: fresh ?? outcome.batch, replayed: false };
  } catch (err) {
    await cleanup();
    throw toApiError(err);
  }
}

function parseBody(fields: Record<string, string>) {
  const { results, ...rest } = fields;
  const extra = Object.keys(rest);
  if (extra.length > 0) throw new ApiError(400, "validation_error", `unexpected field "${extra[0]}"`);
  if (results === undefined) throw new ApiError(400, "validation_error", 'no "results" field');
  let json: unknown;
  try {
    json = JSON.parse(results);
  } catch {
    throw new ApiError(400, "validation_error", '"results" is not JSON');
  }
  const parsed = IngestBody.safeParse(json);
  if (!parsed.success) throw validationError(parsed.error);
  const ids = new Set(parsed.data.items.map((item) => item.id));
  if (ids.size !== parsed.data.items.length) throw new ApiError(400, "validation_error", "duplicate item id");
  return parsed.data;
}

function toResult(item: z.infer<typeof IngestItem>, modelVersion: string, auditRate: number): ResultInput {
  if (item.status === "failed") {
    return {
      imageId: item.id,
      status: "failed",
      modelVersion,
      errorCode: item.error?.code ?? "edge_failed",
      errorMessage: item.error?.message ?? null,
    };
  }
  return {
    imageId: item.id,
    status: "ok",
    label: item.label ?? null,
    confidence: item.confidence ?? null,
    top: item.top ?? null,
    review: item.review ?? null,
    modelVersion,
    auditRate,
    inferenceMs: item.inferenceMs ?? null,
    embedding: item.embedding ? decodeFloats(item.embedding) : null,
  };
}

function decodeFloats(base64: string): Float32Array {
  const bytes = Buffer.from(base64, "base64");
  if (bytes.length % 4 !== 0) throw new ApiError(400, "validation_error", "embedding is not float32 bytes");
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

function toApiError(err: unknown): unknown {
  if (err instanceof ApiError) return err;
  // recordResults' own checks (a label without confidence, review flags that disagree): the caller's data.
  if (err instanceof TypeError) return new ApiError(400, "validation_error", err.message);
  // drizzle wraps the driver's error; the Postgres code is on its cause.
  const pg = ((err as { cause?: unknown }).cause ?? err) as { code?: string; constraint?: string };
  if (pg.code === "23505" && pg.constraint === "images_pkey") {
    return new ApiError(409, "image_exists", "an item id is already an image of another batch");
  }
  return err;
}
