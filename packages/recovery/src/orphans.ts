import { type DbOrTx, storageKeysOf } from "@garbage/db";
import { type ImageStore, parseUploadKey, UPLOAD_PREFIX } from "@garbage/storage";

export interface OrphanOptions {
  /** Only objects written longer ago than this: younger ones may belong to an upload still in progress. */
  graceMs: number;
  /** Continue after this key (the previous page's `next`); undefined starts a new pass over the store. */
  after?: string;
  /** Objects examined per call. */
  limit: number;
  now?: number;
}

export interface OrphanOutcome {
  examined: number;
  removed: string[];
  /** Interrupted writes cleared (file store `.part` files); only on the first page of a pass. */
  incomplete: number;
  /** Where the next call continues; undefined once the pass reached the end of the store. */
  next: string | undefined;
}

/**
 * Deletes uploads that no image row points at (an API that died between storing the files and committing the
 * batch, or before its own cleanup ran), one page of keys per call. A key only counts as an orphan when it is
 * an upload key (`batches/<batch>/<image>`), older than the grace period, and the image row it is named after
 * does not exist or points elsewhere; anything else under the prefix is kept.
 *
 * The grace period is what keeps a running upload safe: its files have no rows until the whole request is
 * stored and committed, so it must exceed the longest upload (the default hour is far above it).
 */
export async function removeOrphanUploads(
  deps: { db: DbOrTx; store: ImageStore },
  options: OrphanOptions,
): Promise<OrphanOutcome> {
  const cutoff = new Date((options.now ?? Date.now()) - options.graceMs);
  const page = await deps.store.list({ prefix: UPLOAD_PREFIX, after: options.after, limit: options.limit });
  const candidates = page.flatMap((object) => {
    const ids = parseUploadKey(object.key);
    return ids && object.createdAt < cutoff ? [{ key: object.key, imageId: ids.imageId }] : [];
  });
  const pointedAt = await storageKeysOf(
    deps.db,
    candidates.map((c) => c.imageId),
  );
  const orphans = candidates.filter((c) => pointedAt.get(c.imageId) !== c.key);
  for (const orphan of orphans) await deps.store.delete(orphan.key);
  const incomplete = options.after === undefined ? await deps.store.purgeIncomplete(cutoff) : 0;
  return {
    examined: page.length,
    removed: orphans.map((o) => o.key),
    incomplete,
    next: page.length < options.limit ? undefined : page.at(-1)?.key,
  };
}
