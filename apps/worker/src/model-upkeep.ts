import {
  ALL_SITES,
  activeModelMap,
  computeSiteThresholds,
  type Db,
  getSiteThresholds,
  listModelVersions,
  sitesWithReviews,
} from "@garbage/db";
import type { Logger } from "@garbage/log";
import { withAdvisoryLock } from "@garbage/recovery";
import { type BackfillDeps, backfillVersion } from "./backfill";
import type { WorkerMetrics } from "./metrics";
import type { ServedVersion } from "./model-pool";

// Its own key (the sweep's is ...002, the registry's ...019): one process at a time does this work, whichever
// process sweeps.
export const MODEL_UPKEEP_LOCK = 7_305_112_020;
/** Images per backfill pass, all shadow versions together: a pass stays a few model batches long. */
export const BACKFILL_PER_PASS = 64;
// Images that cannot be classified are remembered (bounded) so they do not fill every pass.
const MAX_SKIPPED = 10_000;

export interface ModelUpkeepOptions extends Omit<BackfillDeps, "db"> {
  db: Db;
  log: Logger;
  metrics?: WorkerMetrics;
  defaultVersion: ServedVersion;
  /** The default model's manifest novelty threshold (registered versions' are read from their rows). */
  defaultMaxDistance: number | null;
  targetAccuracy: number;
  minReviews: number;
  /** A site's thresholds are refitted at most this often; 0 turns fitting off. */
  thresholdIntervalMs: number;
}

/**
 * The model side of the sweep, one process at a time (an advisory lock of its own): backfill shadow versions
 * on reviewed images (bounded per pass), then refit per-site review thresholds that are due. Returns false
 * when another process holds the lock.
 */
export function createModelUpkeep(opts: ModelUpkeepOptions): () => Promise<boolean> {
  const skipped = new Set<string>();
  // Last attempt per site and version in this process, so sites short of reviews are not refitted every pass.
  const attempted = new Map<string, number>();

  const backfill = async () => {
    const [shadows, active] = await Promise.all([
      listModelVersions(opts.db, { states: ["shadow"] }),
      activeModelMap(opts.db),
    ]);
    let budget = BACKFILL_PER_PASS;
    for (const version of shadows) {
      if (budget <= 0) break;
      const done = await backfillVersion(opts, version, active, { limit: budget, skip: [...skipped] });
      budget -= done.images;
      for (const id of done.skip) if (skipped.size < MAX_SKIPPED) skipped.add(id);
      opts.metrics?.backfillImages.inc({ role: "candidate" }, done.candidate);
      opts.metrics?.backfillImages.inc({ role: "active" }, done.active);
      if (done.candidate + done.active > 0) {
        opts.log.info(
          { modelVersion: version.modelVersion, candidate: done.candidate, active: done.active },
          "backfilled reviewed images",
        );
      }
    }
  };

  const thresholds = async () => {
    if (opts.thresholdIntervalMs <= 0) return;
    const active = await activeModelMap(opts.db);
    const sites = new Set([...(await sitesWithReviews(opts.db)), ...active.keys()]);
    sites.delete(ALL_SITES);
    const fitted = new Map(
      (await getSiteThresholds(opts.db, { sites: [...sites] })).map((t) => [
        `${t.site}\n${t.modelVersion}`,
        t.computedAt.getTime(),
      ]),
    );
    const now = Date.now();
    for (const site of sites) {
      const row = active.get(site) ?? active.get(ALL_SITES);
      const modelVersion = row?.modelVersion ?? opts.defaultVersion.modelVersion;
      const key = `${site}\n${modelVersion}`;
      const last = Math.max(fitted.get(key) ?? 0, attempted.get(key) ?? 0);
      if (now - last < opts.thresholdIntervalMs) continue;
      attempted.set(key, now);
      const fit = await computeSiteThresholds(opts.db, {
        site,
        modelVersion,
        target: opts.targetAccuracy,
        minReviewed: opts.minReviews,
        ...(row ? {} : { maxDistance: opts.defaultMaxDistance }),
      });
      opts.metrics?.siteThresholds.inc({ outcome: "needed" in fit ? "needed" : "fitted" });
      if (!("needed" in fit)) {
        const { minConfidence, coverage, unflaggedAccuracy, reviewed } = fit;
        opts.log.info(
          { site, modelVersion, minConfidence, coverage, unflaggedAccuracy, reviewed },
          "site review thresholds fitted",
        );
      }
    }
  };

  return async () => {
    const ran = await withAdvisoryLock(opts.db.$client, MODEL_UPKEEP_LOCK, async () => {
      // Independent: a backfill that cannot load its model must not stop the thresholds, nor the reverse.
      await backfill().catch((err: unknown) => opts.log.warn({ err }, "shadow backfill failed, will retry"));
      await thresholds().catch((err: unknown) => {
        opts.metrics?.siteThresholds.inc({ outcome: "failed" });
        opts.log.warn({ err }, "site thresholds not fitted, will retry");
      });
      return true;
    });
    return ran ?? false;
  };
}
