import { createHash } from "node:crypto";
import {
  ALL_SITES,
  activeModelMap,
  type DbOrTx,
  getSiteThresholds,
  listModelVersions,
  type ModelVersionRow,
} from "@garbage/db";
import type { Logger } from "@garbage/log";
import type { ServedVersion } from "./model-pool";

export interface SiteThreshold {
  minConfidence: number;
  maxDistance?: number;
}

interface Snapshot {
  assignments: Map<string, ModelVersionRow>;
  shadows: ModelVersionRow[];
  thresholds: Map<string, SiteThreshold>;
}

export interface ModelRoutesOptions {
  db: DbOrTx;
  refreshMs: number;
  /** The shipped model, serving every site without an assignment. */
  defaultVersion: ServedVersion;
  shadowRate: number;
  log: Logger;
}

const thresholdKey = (site: string, modelVersion: string) => `${site}\n${modelVersion}`;

export const versionOf = (row: ModelVersionRow): ServedVersion => ({
  key: row.id,
  modelVersion: row.modelVersion,
  row,
});

/**
 * Deterministic in [0, 1): a retried job, or another worker, samples the same images, so a shadow version
 * sees each chosen image once and every shadow version sees the same ones (comparable side by side).
 */
export function sampleValue(imageId: string): number {
  return createHash("sha256").update(imageId).digest().readUInt32BE(0) / 2 ** 32;
}

/**
 * What each site is served with, read from Postgres every `refreshMs`: assignments (site, else '*', else the
 * default), the shadow versions and per-site review thresholds. A failed refresh keeps the last snapshot (the
 * database being down fails the jobs' own writes anyway); before the first one, `resolve` throws so jobs are
 * retried instead of being labelled by a version that may not be the site's.
 */
export class ModelRoutes {
  private snapshot: Snapshot | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly opts: ModelRoutesOptions) {}

  /** Reads the first snapshot (throws if it cannot) and keeps refreshing. */
  async start(): Promise<void> {
    await this.refresh(true);
    this.schedule();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running;
  }

  resolve(site: string | null | undefined): ServedVersion {
    const snap = this.current();
    const row = (site != null ? snap.assignments.get(site) : undefined) ?? snap.assignments.get(ALL_SITES);
    return row ? versionOf(row) : this.opts.defaultVersion;
  }

  /** The shadow versions whose scope holds `site` and whose sample includes this image. */
  shadowsFor(site: string | null | undefined, imageId: string): ModelVersionRow[] {
    const snap = this.current();
    if (snap.shadows.length === 0 || sampleValue(imageId) >= this.opts.shadowRate) return [];
    return snap.shadows.filter((v) => v.sites === null || (site != null && v.sites.includes(site)));
  }

  get shadows(): readonly ModelVersionRow[] {
    return this.current().shadows;
  }

  /** Sites with an assignment of their own (not '*'). */
  get assignedSites(): string[] {
    return [...this.current().assignments.keys()].filter((s) => s !== ALL_SITES);
  }

  thresholds(site: string | null | undefined, modelVersion: string): SiteThreshold | undefined {
    if (site == null) return undefined;
    return this.current().thresholds.get(thresholdKey(site, modelVersion));
  }

  async refresh(strict = false): Promise<void> {
    try {
      const [assignments, shadows, thresholds] = await Promise.all([
        activeModelMap(this.opts.db),
        listModelVersions(this.opts.db, { states: ["shadow"] }),
        getSiteThresholds(this.opts.db),
      ]);
      const next: Snapshot = {
        assignments,
        shadows,
        thresholds: new Map(
          thresholds.map((t) => [
            thresholdKey(t.site, t.modelVersion),
            { minConfidence: t.minConfidence, maxDistance: t.maxDistance ?? undefined },
          ]),
        ),
      };
      this.logChanges(next);
      this.snapshot = next;
    } catch (err) {
      if (strict) throw err;
      this.opts.log.warn({ err }, "model assignments not refreshed, keeping the last ones");
    }
  }

  private current(): Snapshot {
    if (!this.snapshot) throw new Error("model assignments are not loaded yet");
    return this.snapshot;
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.running = this.refresh().finally(() => {
        this.running = undefined;
        this.schedule();
      });
    }, this.opts.refreshMs);
  }

  // One line per change, so a promotion or rollback is visible in every worker's log when it takes effect.
  private logChanges(next: Snapshot): void {
    const describe = (s: Snapshot | undefined) => ({
      serving: Object.fromEntries(
        [...(s?.assignments ?? [])].map(([site, v]) => [site, v.modelVersion]).sort(),
      ),
      shadows: (s?.shadows ?? []).map((v) => v.modelVersion).sort(),
    });
    const [before, after] = [describe(this.snapshot), describe(next)];
    if (JSON.stringify(before) === JSON.stringify(after)) return;
    this.opts.log.info(
      { ...after, default: this.opts.defaultVersion.modelVersion },
      "model assignments changed",
    );
  }
}
