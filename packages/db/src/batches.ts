import { and, asc, eq, inArray, isNotNull, sql } from "drizzle-orm";
import type { DbOrTx } from "./client";
import { updateQualityRollup } from "./quality";
import { type RecordResultsOutcome, recordResults } from "./record-results";
import { type RollupRow, updateRollup } from "./rollup";
import { batches } from "./schema/batches";
import { images } from "./schema/images";

export type Batch = typeof batches.$inferSelect;
export type Image = typeof images.$inferSelect;

export interface NewImage {
  /** Defaults to a random uuid; the API picks it up front so it can name the storage key after it. */
  id?: string;
  /** Position in the upload, 0-based, unique within the batch. */
  index: number;
  filename?: string | null;
  /** Null for an upload that was rejected before storage; `rejected` must then be set. */
  storageKey: string | null;
  bytes: number;
  sha256?: string | null;
  contentType?: string | null;
  /** When this image was taken; default the batch's capturedAt, else its creation time. */
  capturedAt?: Date | null;
  /** Recorded as a failed result in the same transaction, so the batch still adds up. */
  rejected?: { code: string; message: string };
}

export interface CreateBatchInput {
  id?: string;
  /** Who submits it; idempotency keys are unique per principal. Default ''. */
  principal?: string;
  idempotencyKey?: string | null;
  site?: string | null;
  line?: string | null;
  camera?: string | null;
  capturedAt?: Date | null;
  /** Images per queue job the caller is about to enqueue with; recovery re-derives the job ids from it. */
  chunkSize?: number;
  images: readonly NewImage[];
}

export interface CreateBatchOutcome {
  batch: Batch;
  /** False when the idempotency key already belonged to a batch; nothing was written then. */
  created: boolean;
  images: Pick<Image, "id" | "index" | "storageKey">[];
  rejected?: RecordResultsOutcome;
}

const IMAGE_INSERT_CHUNK = 1_000;

/**
 * Inserts the batch and all its image rows in one transaction (a savepoint when `db` is already a
 * transaction). With an idempotency key, `insert ... on conflict do nothing` makes a concurrent second
 * creator wait for the first and then return the first's batch instead of failing or duplicating it.
 */
export async function createBatch(db: DbOrTx, input: CreateBatchInput): Promise<CreateBatchOutcome> {
  if (input.images.length === 0) throw new TypeError("a batch needs at least one image");
  return db.transaction(async (tx) => {
    const values = {
      ...(input.id ? { id: input.id } : {}),
      total: input.images.length,
      site: input.site ?? null,
      line: input.line ?? null,
      camera: input.camera ?? null,
      capturedAt: input.capturedAt ?? null,
      principal: input.principal ?? "",
      idempotencyKey: input.idempotencyKey ?? null,
      ...(input.chunkSize !== undefined ? { chunkSize: input.chunkSize } : {}),
    };
    const [batch] = await tx
      .insert(batches)
      .values(values)
      .onConflictDoNothing({ target: [batches.principal, batches.idempotencyKey] })
      .returning();
    if (!batch) {
      const existing = await getBatchByIdempotencyKey(tx, input.principal ?? "", input.idempotencyKey ?? "");
      if (!existing) throw new Error("idempotency conflict but no batch found for the key");
      return { batch: existing, created: false, images: await listQueueableImages(tx, existing.id) };
    }

    const capturedAt = batch.capturedAt ?? batch.createdAt;
    const rows = input.images.map((image) => ({
      ...(image.id ? { id: image.id } : {}),
      batchId: batch.id,
      index: image.index,
      filename: image.filename ?? null,
      storageKey: image.rejected ? null : image.storageKey,
      bytes: image.bytes,
      sha256: image.sha256 ?? null,
      contentType: image.contentType ?? null,
      site: batch.site,
      line: batch.line,
      capturedAt: image.capturedAt ?? capturedAt,
    }));
    const inserted: CreateBatchOutcome["images"] = [];
    for (let i = 0; i < rows.length; i += IMAGE_INSERT_CHUNK) {
      const chunk = await tx
        .insert(images)
        .values(rows.slice(i, i + IMAGE_INSERT_CHUNK))
        .returning({ id: images.id, index: images.index, storageKey: images.storageKey });
      inserted.push(...chunk);
    }
    inserted.sort((a, b) => a.index - b.index);

    const idByIndex = new Map(inserted.map((row) => [row.index, row.id]));
    const failures = input.images.flatMap((image) =>
      image.rejected ? [{ imageId: idByIndex.get(image.index) as string, image }] : [],
    );
    let rejected: RecordResultsOutcome | undefined;
    if (failures.length > 0) {
      rejected = await recordResults(
        tx,
        failures.map(({ imageId, image }) => ({
          imageId,
          status: "failed" as const,
          errorCode: image.rejected?.code ?? "rejected",
          errorMessage: image.rejected?.message ?? null,
        })),
      );
    }
    const [fresh] = await tx.select().from(batches).where(eq(batches.id, batch.id));
    return {
      batch: fresh ?? batch,
      created: true,
      images: inserted.filter((row) => row.storageKey !== null),
      ...(rejected ? { rejected } : {}),
    };
  });
}

/** Which sites a reader may see; null means every site, including batches without one. */
export type SiteScope = readonly string[] | null;

/** The batch, or null when there is none or its site is outside `sites`. */
export async function getBatch(db: DbOrTx, id: string, sites: SiteScope = null): Promise<Batch | null> {
  const visible = sites === null ? undefined : inArray(batches.site, [...sites]);
  const [batch] = await db
    .select()
    .from(batches)
    .where(and(eq(batches.id, id), visible));
  return batch ?? null;
}

export async function getBatchByIdempotencyKey(
  db: DbOrTx,
  principal: string,
  key: string,
): Promise<Batch | null> {
  const [batch] = await db
    .select()
    .from(batches)
    .where(and(eq(batches.principal, principal), eq(batches.idempotencyKey, key)));
  return batch ?? null;
}

/** Images that go to the queue, in upload order: chunking by position keeps job ids deterministic. */
export async function listQueueableImages(
  db: DbOrTx,
  batchId: string,
): Promise<Pick<Image, "id" | "index" | "storageKey">[]> {
  return db
    .select({ id: images.id, index: images.index, storageKey: images.storageKey })
    .from(images)
    .where(and(eq(images.batchId, batchId), isNotNull(images.storageKey)))
    .orderBy(asc(images.index));
}

export async function markBatchEnqueued(db: DbOrTx, id: string): Promise<void> {
  await db
    .update(batches)
    .set({ enqueuedAt: sql`coalesce(${batches.enqueuedAt}, now())` })
    .where(eq(batches.id, id));
}

/**
 * Compensation for a submission that could not be enqueued. Cascades to images, results and
 * reviews, and takes the batch's results (under their effective labels) back out of the rollup, so stats
 * keep equalling the sum of results.
 */
export async function deleteBatch(db: DbOrTx, id: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    const locked = await tx.execute(sql`select id from batches where id = ${id} for update`);
    if (locked.rows.length === 0) return false;
    const recorded = await tx.execute<
      RollupRow &
        Record<string, unknown> & {
          model_label: string | null;
          audit: boolean;
          audit_rate: number;
          truth: string | null;
        }
    >(sql`
      select r.status, coalesce(rv.label, r.label) as label, r.confidence, r.needs_review, i.site, i.line,
        date_trunc('minute', i.captured_at) as bucket, rv.image_id is not null as reviewed, rv.changed,
        r.label as model_label, r.audit, r.audit_rate, rv.label as truth
      from results r join images i on i.id = r.image_id left join reviews rv on rv.image_id = r.image_id
      where r.batch_id = ${id}`);
    if (recorded.rows.length > 0) await updateRollup(tx, recorded.rows, -1);
    await updateQualityRollup(
      tx,
      recorded.rows
        .filter((r) => r.status === "ok" && r.model_label != null)
        .map((r) => ({
          bucket: r.bucket,
          site: r.site,
          line: r.line,
          flagged: r.needs_review,
          auditRate: Number(r.audit_rate),
          audit: r.audit,
          predicted: r.model_label as string,
          truth: r.truth,
          sign: -1 as const,
        })),
    );
    await tx.delete(batches).where(eq(batches.id, id));
    return true;
  });
}
