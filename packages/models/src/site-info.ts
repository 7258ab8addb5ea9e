import type { TrainedOn } from "@garbage/db";
import { z } from "zod";
import { ModelFilesError } from "./errors";

/**
 * The manifest's `site` block, written by `npm run adapt`: which sites' reviewed images the version trained
 * on, how many per class, where they came from, and the latest review time among them.
 */
const siteBlock = z
  .object({
    sites: z.array(z.string()).nullable().default(null),
    images: z.number().int().nonnegative().default(0),
    perClass: z.record(z.string(), z.number()).default({}),
    source: z.string().default("unknown"),
    dataUntil: z.string().nullable().optional(),
  })
  .passthrough();

export interface SiteInfo {
  trainedOn: TrainedOn | null;
  dataUntil: Date | null;
  metrics: unknown;
}

/** trained_on, data_until and metrics of a registry row, from the float manifest (all null when absent). */
export function siteInfoOf(manifest: Record<string, unknown>, label: string): SiteInfo {
  // The manifest schema defaults metrics to []: no evaluations is no metrics.
  const metrics =
    Array.isArray(manifest.metrics) && manifest.metrics.length === 0 ? null : (manifest.metrics ?? null);
  if (manifest.site === undefined || manifest.site === null)
    return { trainedOn: null, dataUntil: null, metrics };
  const parsed = siteBlock.safeParse(manifest.site);
  if (!parsed.success) {
    throw new ModelFilesError("invalid", `${label}: bad "site" block: ${z.prettifyError(parsed.error)}`);
  }
  const { sites, images, perClass, source, dataUntil } = parsed.data;
  const until = dataUntil ? new Date(dataUntil) : null;
  if (until && Number.isNaN(until.getTime())) {
    throw new ModelFilesError("invalid", `${label}: site.dataUntil is not a time: ${dataUntil}`);
  }
  return { trainedOn: { sites, images, perClass, source }, dataUntil: until, metrics };
}
