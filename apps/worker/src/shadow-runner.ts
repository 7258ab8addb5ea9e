import { type DbOrTx, type ModelVersionRow, recordShadowResults, type ShadowResultInput } from "@garbage/db";
import type { BatchClassification } from "@garbage/inference";
import type { Logger } from "@garbage/log";
import type { WorkerMetrics } from "./metrics";
import type { ServedVersion } from "./model-pool";
import { versionOf } from "./model-routes";

interface ShadowWork {
  imageId: string;
  version: ModelVersionRow;
  bytes: Uint8Array;
}

export interface ShadowRunnerOptions {
  db: DbOrTx;
  /** Classifies with a loaded version, or answers undefined when it is not loaded and no slot is free. */
  classify: (version: ServedVersion, images: Uint8Array[]) => Promise<BatchClassification | undefined>;
  /** Most images waiting; beyond it new work is dropped (and counted), so shadowing can never pile up. */
  capacity: number;
  batchSize: number;
  log: Logger;
  metrics?: WorkerMetrics;
}

/**
 * Runs shadow versions on sampled live images after their real results are committed, one model batch at a
 * time, off the jobs' path: jobs never wait for it and its failures are only logged and counted. Its queue is
 * bounded in images (and so in memory); what does not fit is dropped.
 */
export class ShadowRunner {
  private readonly queue: ShadowWork[] = [];
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly opts: ShadowRunnerOptions) {}

  get waiting(): number {
    return this.queue.length;
  }

  /** Whether work would be taken now; lets callers skip copying bytes that would be dropped. */
  get hasRoom(): boolean {
    return !this.closed && this.queue.length < this.opts.capacity;
  }

  submit(imageId: string, version: ModelVersionRow, bytes: Uint8Array): void {
    if (!this.hasRoom) {
      this.opts.metrics?.shadowImages.inc({ outcome: "dropped" });
      return;
    }
    this.queue.push({ imageId, version, bytes });
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
    });
  }

  /** Stops taking work and waits for the batch in progress; what still waits is dropped. */
  async close(): Promise<void> {
    this.closed = true;
    await this.running;
    this.opts.metrics?.shadowImages.inc({ outcome: "dropped" }, this.queue.splice(0).length);
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.closed) {
      const first = this.queue[0] as ShadowWork;
      // One version per model batch: take the first waiting version's images, in arrival order.
      const batch: ShadowWork[] = [];
      for (let i = 0; i < this.queue.length && batch.length < this.opts.batchSize; ) {
        const work = this.queue[i] as ShadowWork;
        if (work.version.id === first.version.id) {
          batch.push(work);
          this.queue.splice(i, 1);
        } else i++;
      }
      await this.run(first.version, batch);
    }
  }

  private async run(version: ModelVersionRow, batch: ShadowWork[]): Promise<void> {
    const m = this.opts.metrics;
    try {
      const classified = await this.opts.classify(
        versionOf(version),
        batch.map((w) => w.bytes),
      );
      if (!classified) {
        m?.shadowImages.inc({ outcome: "no_slot" }, batch.length);
        return;
      }
      const rows = batch.flatMap((w, i): ShadowResultInput[] => {
        const o = classified.outcomes[i];
        if (!o?.ok) return [];
        const { label, confidence, top, review } = o;
        return [
          { imageId: w.imageId, versionId: version.id, source: "live", label, confidence, top, review },
        ];
      });
      await recordShadowResults(this.opts.db, rows);
      m?.shadowImages.inc({ outcome: "recorded" }, rows.length);
      // Undecodable for this version: nothing to compare, but worth seeing.
      m?.shadowImages.inc({ outcome: "failed" }, batch.length - rows.length);
    } catch (err) {
      m?.shadowImages.inc({ outcome: "failed" }, batch.length);
      this.opts.log.warn(
        { err, modelVersion: version.modelVersion, images: batch.length },
        "shadow run failed (the real results are recorded)",
      );
    }
  }
}
