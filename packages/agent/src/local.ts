import { createHash } from "node:crypto";
import { InferenceThread } from "@garbage/inference";
import type { Logger } from "@garbage/log";
import { auditPicked } from "@garbage/stats";
import type { AgentMetrics } from "./metrics";
import type { Spool, SpoolItem } from "./spool";

/** What local mode keeps per image (results/<item>.json) and sends to POST /v1/results. */
export interface LocalResult {
  id: string;
  modelVersion: string;
  status: "ok" | "failed";
  label?: string;
  confidence?: number;
  top?: { label: string; confidence: number }[];
  review?: { needsReview: boolean; lowConfidence: boolean; unfamiliar: boolean; distance: number | null };
  inferenceMs?: number;
  error?: { code: string; message: string };
  sha256?: string;
  /** The photo goes along: flagged for review, or picked for a blind audit. */
  image: boolean;
  /** Features of an uploaded photo (little-endian float32, base64): the review page's similar images. */
  embedding?: string;
}

/**
 * The image's id in the API, fixed by its identity: a retry, or the same photo after a restart, is the same
 * image row, which is what lets the audit pick below agree with the API's.
 */
export function imageIdFor(hash: string): string {
  const h = createHash("sha256").update(`image:${hash}`).digest("hex");
  // An RFC 9562 version-8 (custom) uuid.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((Number.parseInt(h[16] as string, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * The blind-audit hook: whether the central audit sample includes this image, so its photo must be uploaded
 * although the model did not flag it. The API's own rule (@garbage/stats' auditPicked on the image id); the
 * rate goes along with the results, so the API records exactly these picks.
 */
export function auditSampleWantsImage(imageId: string, rate: number): boolean {
  return auditPicked(imageId, rate);
}

export interface LocalOptions {
  model: string;
  threads: number;
  maxBatch: number;
  auditRate: number;
}

/** Classifies spooled images on this device (in a model thread, so the agent's event loop keeps serving). */
export class LocalClassifier {
  private constructor(
    private readonly thread: InferenceThread,
    private readonly opts: LocalOptions,
    readonly modelVersion: string,
  ) {}

  static async start(opts: LocalOptions): Promise<LocalClassifier> {
    const thread = await InferenceThread.start({
      model: opts.model,
      provider: "cpu",
      threads: opts.threads,
      maxBatch: opts.maxBatch,
    });
    return new LocalClassifier(thread, opts, `${thread.model.name}@${thread.model.version}`);
  }

  async run(spool: Spool, stop: AbortSignal, metrics: AgentMetrics, log: Logger): Promise<void> {
    while (!stop.aborted) {
      const todo = spool
        .unbatched()
        .filter((i) => !spool.hasResult(i))
        .slice(0, this.opts.maxBatch);
      if (todo.length === 0) {
        await spool.changed(1_000);
        continue;
      }
      try {
        await this.classify(spool, todo, metrics);
      } catch (err) {
        log.error({ err, images: todo.length }, "local classification failed; retrying");
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  }

  private async classify(spool: Spool, items: SpoolItem[], metrics: AgentMetrics): Promise<void> {
    const bytes = await Promise.all(items.map((i) => spool.readImage(i)));
    const sha = bytes.map((b) => createHash("sha256").update(b).digest("hex"));
    const run = await this.thread.classify(bytes);
    const perImageMs = run.inferenceMs / Math.max(1, run.modelBatchSize);
    for (const [i, item] of items.entries()) {
      const o = run.outcomes[i];
      const id = imageIdFor(item.hash);
      let result: LocalResult;
      if (o?.ok) {
        const image = o.needsReview || auditSampleWantsImage(id, this.opts.auditRate);
        result = {
          id,
          modelVersion: this.modelVersion,
          status: "ok",
          label: o.label,
          confidence: o.confidence,
          top: o.top.slice(0, 3),
          review: o.review,
          inferenceMs: perImageMs,
          sha256: sha[i],
          image,
          ...(image && o.embedding ? { embedding: floatsBase64(o.embedding) } : {}),
        };
      } else {
        // Recorded as failed, like the worker does; its bytes stay here (a file the API might refuse as too
        // large would sink the whole request).
        result = {
          id,
          modelVersion: this.modelVersion,
          status: "failed",
          error: o?.error ?? { code: "no_outcome", message: "the model thread returned nothing" },
          sha256: sha[i],
          image: false,
        };
      }
      await spool.writeResult(item, result);
      metrics.classified.inc({
        outcome: result.status === "ok" ? (result.image ? "uploaded" : "ok") : "failed",
      });
    }
  }

  close(): Promise<void> {
    return this.thread.close();
  }
}

function floatsBase64(v: Float32Array): string {
  const out = Buffer.alloc(v.length * 4);
  for (let i = 0; i < v.length; i++) out.writeFloatLE(v[i] as number, i * 4);
  return out.toString("base64");
}
