import { createHash } from "node:crypto";
import type { Logger } from "@garbage/log";
import type { LocalResult } from "./local";
import { contentTypeOf } from "./metadata";
import type { AgentMetrics } from "./metrics";
import type { BatchManifest, Spool, SpoolItem } from "./spool";

export interface SenderOptions {
  api: string;
  key?: string;
  kind: BatchManifest["kind"];
  batchSize: number;
  maxWaitMs: number;
  /** Local mode: the audit rate the uploads were chosen with, sent so the API records the same picks. */
  auditRate?: number;
  /** One request's limit: a stalled connection is abandoned and the batch retried (same key). */
  requestTimeoutMs?: number;
}

type Attempt =
  | { ok: true; replayed: boolean }
  | { ok: false; retry: boolean; reason: string; waitMs?: number };

// Short enough that a restored API is used within seconds; a retry is one small request.
const MAX_BACKOFF_MS = 10_000;

/** The Idempotency-Key of a batch: its kind and its images' identities (bytes and metadata), hashed. */
export function batchKey(kind: BatchManifest["kind"], items: readonly { hash: string }[]): string {
  const h = createHash("sha256").update(kind);
  for (const i of items) h.update(`\n${i.hash}`);
  return `agent-${kind === "forward" ? "b" : "r"}-${h.digest("hex")}`;
}

const sameLabels = (a: SpoolItem, b: SpoolItem) =>
  a.site === b.site && a.line === b.line && a.camera === b.camera;

/**
 * Drains the spool in order, one batch in flight: the oldest open batch first (formed before a crash or an
 * outage, resent as it was, with its key), else a new one from the head of the backlog (consecutive images of
 * one site/line/camera, up to batchSize, or fewer once the oldest has waited maxWaitMs).
 */
export class Sender {
  lastSuccessAt: Date | null = null;
  lastError: string | null = null;
  private backoffMs = 0;

  constructor(
    private readonly spool: Spool,
    private readonly opts: SenderOptions,
    private readonly metrics: AgentMetrics,
    private readonly log: Logger,
  ) {}

  async run(stop: AbortSignal): Promise<void> {
    while (!stop.aborted) {
      const next = this.spool.openBatches()[0] ?? (await this.form(stop));
      if (typeof next === "number") {
        await Promise.race([this.spool.changed(next), aborted(stop)]);
        continue;
      }
      const started = performance.now();
      const attempt: Attempt = await this.send(next).catch((err: Error) => ({
        ok: false as const,
        retry: true,
        reason: err.cause instanceof Error ? err.cause.message : err.message,
      }));
      const ms = Math.round(performance.now() - started);
      const fields = { batch: next.name, kind: next.kind, images: next.items.length, ms };
      if (attempt.ok) {
        await this.spool.complete(next);
        this.metrics.sent.inc({ kind: next.kind }, next.items.length);
        this.lastSuccessAt = new Date();
        this.lastError = null;
        this.backoffMs = 0;
        this.log.info({ ...fields, replayed: attempt.replayed }, "batch sent");
      } else if (!attempt.retry) {
        await this.spool.reject(next, attempt.reason);
        this.metrics.rejected.inc({ kind: next.kind }, next.items.length);
        this.log.error({ ...fields, reason: attempt.reason }, "batch refused by the API; moved to rejected/");
      } else {
        this.metrics.failed.inc({ kind: next.kind, reason: attempt.reason.slice(0, 40) });
        this.lastError = attempt.reason;
        this.backoffMs = Math.min(MAX_BACKOFF_MS, Math.max(500, this.backoffMs * 2));
        const waitMs = attempt.waitMs ?? this.backoffMs;
        this.log.warn({ ...fields, reason: attempt.reason, retryInMs: waitMs }, "send failed, will retry");
        await Promise.race([sleep(waitMs), aborted(stop)]);
      }
    }
  }

  /** A new batch, or how long to wait before one can be formed. */
  private async form(stop: AbortSignal): Promise<BatchManifest | number> {
    let items = this.spool.unbatched();
    if (this.opts.kind === "results") {
      const firstUnclassified = items.findIndex((i) => !this.spool.hasResult(i));
      if (firstUnclassified >= 0) items = items.slice(0, firstUnclassified);
    }
    const head = items[0];
    if (!head) return 1_000;
    const group: SpoolItem[] = [];
    let version: string | undefined;
    for (const item of items) {
      if (group.length >= this.opts.batchSize || !sameLabels(head, item)) break;
      if (this.opts.kind === "results") {
        // One model version per request: a restart with another model starts a new batch.
        const v = (await this.spool.readResult<LocalResult>(item)).modelVersion;
        if (version !== undefined && v !== version) break;
        version = v;
      }
      group.push(item);
    }
    const waited = Date.now() - Date.parse(head.acceptedAt);
    const full = group.length >= this.opts.batchSize || group.length < items.length;
    if (!full && waited < this.opts.maxWaitMs && !stop.aborted) return this.opts.maxWaitMs - waited;
    return this.spool.formBatch(this.opts.kind, group, batchKey(this.opts.kind, group));
  }

  private async send(m: BatchManifest): Promise<Attempt> {
    const items = m.items.map((n) => this.spool.item(n)).filter((i): i is SpoolItem => !!i);
    const head = items[0];
    if (!head) return { ok: true, replayed: false };
    const form = new FormData();
    if (m.kind === "forward") {
      for (const k of ["site", "line", "camera"] as const) if (head[k]) form.append(k, head[k]);
      form.append("imageCapturedAt", JSON.stringify(items.map((i) => i.capturedAt)));
      for (const item of items) await this.appendImage(form, item);
    } else {
      const results = await Promise.all(items.map((i) => this.spool.readResult<LocalResult>(i)));
      const payload = {
        ...(head.site ? { site: head.site } : {}),
        ...(head.line ? { line: head.line } : {}),
        ...(head.camera ? { camera: head.camera } : {}),
        modelVersion: results[0]?.modelVersion,
        auditRate: this.opts.auditRate ?? 0,
        items: items.map((item, i) => {
          const { modelVersion: _, ...r } = results[i] as LocalResult;
          return { ...r, filename: item.filename, capturedAt: item.capturedAt, bytes: item.bytes };
        }),
      };
      form.append("results", JSON.stringify(payload));
      for (const [i, item] of items.entries()) if (results[i]?.image) await this.appendImage(form, item);
    }
    const path = m.kind === "forward" ? "/v1/batches" : "/v1/results";
    const headers: Record<string, string> = { "Idempotency-Key": m.key };
    if (this.opts.key) headers.Authorization = `Bearer ${this.opts.key}`;
    const res = await fetch(new URL(path, this.opts.api), {
      method: "POST",
      body: form,
      headers,
      signal: AbortSignal.timeout(this.opts.requestTimeoutMs ?? 120_000),
    });
    const text = await res.text().catch(() => "");
    if (res.ok) return { ok: true, replayed: res.headers.get("idempotent-replayed") === "true" };
    const reason = `${res.status} ${text.slice(0, 300)}`;
    const retryAfter = Number(res.headers.get("retry-after"));
    const waitMs =
      Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter, 60) * 1000 : undefined;
    // A wrong key is fixed by a person, not by dropping photos; the rest of 4xx will never succeed.
    const retry = res.status >= 500 || [401, 408, 425, 429].includes(res.status);
    return { ok: false, retry, reason, waitMs };
  }

  private async appendImage(form: FormData, item: SpoolItem): Promise<void> {
    const bytes = await this.spool.readImage(item);
    const name = item.filename ?? `${item.seq}.jpg`;
    form.append("images", new Blob([new Uint8Array(bytes)], { type: contentTypeOf(name) }), name);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const aborted = (signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
