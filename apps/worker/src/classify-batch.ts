import { type DbOrTx, type ModelVersionRow, type ResultInput, recordResults } from "@garbage/db";
import {
  type BatchClassification,
  type ModelInfo,
  reviewFlags,
  type ThreadOutcome,
} from "@garbage/inference";
import type { ClassifyJobImage } from "@garbage/queue";
import type { WorkerMetrics } from "./metrics";
import type { SiteThreshold } from "./model-routes";

/** One image on its way through a model batch. */
export interface BatchItem {
  batchId: string;
  image: ClassifyJobImage;
  /** Encoded bytes, or the reason there are none (recorded as failed without involving the model). */
  source: { bytes: Uint8Array } | { error: { code: string; message: string } };
  /** Epoch ms when the job attempt carrying the image started; queue wait ends here. */
  startedAt: number;
  /** The batch's site: it chose the model version, and its review thresholds apply. */
  site?: string | null;
}

/** Best-effort shadow runs of the batch's images, after their real results are committed. */
export interface ShadowHook {
  /** The shadow versions that want this image; asked before the bytes are handed to the model thread. */
  pick(item: BatchItem): readonly ModelVersionRow[];
  /** Must not block or throw: the real result is already committed. */
  submit(item: BatchItem, version: ModelVersionRow, bytes: Uint8Array): void;
}

export interface BatchRunnerDeps {
  db: DbOrTx;
  inference: {
    readonly model: ModelInfo;
    classify(images: readonly Uint8Array[]): Promise<BatchClassification>;
  };
  metrics?: WorkerMetrics;
  /** What results record; default: the loaded model's own `name@version`. */
  modelVersion?: string;
  /** AUDIT_RATE: recordResults picks each ok result for a blind audit with this probability. */
  auditRate?: number;
  /** A site's fitted review thresholds for this version, used instead of the manifest's. */
  thresholds?: (site: string) => SiteThreshold | undefined;
  shadow?: ShadowHook;
}

/**
 * The micro-batcher's `run`: one inference request (one session.run) for the images of the batch that have
 * bytes, then every outcome of the batch, good, undecodable or missing, in ONE recordResults transaction.
 * Any throw (inference thread lost, database down) fails all items, so every job involved is retried;
 * recordResults' per-image idempotency makes the replay safe.
 */
export function createBatchRunner(deps: BatchRunnerDeps): (items: BatchItem[]) => Promise<undefined[]> {
  const modelVersion = deps.modelVersion ?? `${deps.inference.model.name}@${deps.inference.model.version}`;
  const m = deps.metrics;

  return async (items) => {
    const withBytes = items.filter(
      (it): it is BatchItem & { source: { bytes: Uint8Array } } => "bytes" in it.source,
    );
    // Copied now: the model thread takes the bytes over (transferred, detached here). A copy, not slice():
    // Buffer's slice is a view of the same memory.
    const shadowCopies = deps.shadow
      ? withBytes.flatMap((it) =>
          (deps.shadow?.pick(it) ?? []).map((version) => ({
            it,
            version,
            bytes: new Uint8Array(it.source.bytes),
          })),
        )
      : [];
    const classified = withBytes.length
      ? await deps.inference.classify(withBytes.map((it) => it.source.bytes))
      : { outcomes: [], decodeMs: 0, inferenceMs: 0, modelBatchSize: 0 };
    const outcomeOf = new Map<BatchItem, ThreadOutcome | undefined>(
      withBytes.map((it, i) => [it, classified.outcomes[i]]),
    );

    const now = Date.now();
    const rows = items.map((it): ResultInput => {
      const enqueuedAt = it.image.enqueuedAt;
      const timing = {
        modelVersion,
        queueMs: enqueuedAt ? Math.max(0, it.startedAt - enqueuedAt) : null,
        endToEndMs: enqueuedAt ? Math.max(0, now - enqueuedAt) : null,
      };
      if ("error" in it.source) {
        return {
          imageId: it.image.id,
          status: "failed",
          errorCode: it.source.error.code,
          errorMessage: it.source.error.message,
          ...timing,
        };
      }
      const outcome = outcomeOf.get(it);
      if (!outcome) throw new Error(`inference returned no outcome for image ${it.image.id}`);
      if (!outcome.ok) {
        return {
          imageId: it.image.id,
          status: "failed",
          errorCode: outcome.error.code,
          errorMessage: outcome.error.message,
          ...timing,
        };
      }
      const site = it.site != null ? deps.thresholds?.(it.site) : undefined;
      return {
        imageId: it.image.id,
        status: "ok",
        label: outcome.label,
        confidence: outcome.confidence,
        top: outcome.top,
        review: site ? reviewFlags(outcome.confidence, outcome.review.distance, site) : outcome.review,
        embedding: outcome.embedding,
        auditRate: deps.auditRate ?? 0,
        inferenceMs: classified.inferenceMs,
        ...timing,
      };
    });

    const recordStart = performance.now();
    const outcome = await recordResults(deps.db, rows);
    const recordMs = performance.now() - recordStart;
    for (const { it, version, bytes } of shadowCopies) {
      if (outcomeOf.get(it)?.ok) deps.shadow?.submit(it, version, bytes);
    }

    if (m) {
      if (classified.modelBatchSize > 0) {
        m.batches.inc();
        m.batchSize.observe(classified.modelBatchSize);
        m.inference.observe(classified.inferenceMs / 1000);
      }
      if (withBytes.length > 0) m.decode.observe(classified.decodeMs / 1000);
      m.record.observe(recordMs / 1000);
      m.duplicates.inc(outcome.duplicates);
      for (const row of rows) {
        m.images.inc({ status: row.status });
        if (row.status === "failed") m.failures.inc({ code: row.errorCode ?? "unknown" });
        if (row.queueMs != null) m.queueWait.observe(row.queueMs / 1000);
        if (row.endToEndMs != null) m.endToEnd.observe(row.endToEndMs / 1000);
      }
    }
    return items.map(() => undefined);
  };
}
