import { and, desc, eq, getTableColumns, sql } from "drizzle-orm";
import type { Batch, Image } from "./batches";
import type { DbOrTx } from "./client";
import { batches } from "./schema/batches";
import { images } from "./schema/images";
import { siteIn, type TimeCursor } from "./scope";

/** Batches newest first, keyset-paginated on (created_at, id) so a page costs the same wherever it is. */
export async function listBatches(
  db: DbOrTx,
  options: {
    sites: readonly string[] | null;
    site?: string | null;
    before?: TimeCursor | null;
    limit: number;
  },
): Promise<{ items: Batch[]; next: TimeCursor | null }> {
  const before = options.before;
  const rows = await db
    .select({ ...getTableColumns(batches), at: sql<string>`${batches.createdAt}::text` })
    .from(batches)
    .where(
      and(
        siteIn(sql`${batches.site}`, options.sites),
        options.site != null ? eq(batches.site, options.site) : undefined,
        before
          ? sql`(${batches.createdAt}, ${batches.id}) < (${before.at}::timestamptz, ${before.id}::uuid)`
          : undefined,
      ),
    )
    .orderBy(desc(batches.createdAt), desc(batches.id))
    .limit(options.limit + 1);
  const page = rows.slice(0, options.limit);
  const last = page.at(-1);
  return {
    items: page.map(({ at: _at, ...batch }) => batch),
    next: rows.length > options.limit && last ? { at: last.at, id: last.id } : null,
  };
}

/** The image row, or null when there is none or its site is outside `sites`. */
export async function getImage(
  db: DbOrTx,
  id: string,
  sites: readonly string[] | null,
): Promise<Image | null> {
  const [row] = await db
    .select()
    .from(images)
    .where(and(eq(images.id, id), siteIn(sql`${images.site}`, sites)));
  return row ?? null;
}

/** Distinct sites that have batches and that a reader limited to `sites` (null: all) may see, sorted. */
export async function visibleSites(db: DbOrTx, sites: readonly string[] | null): Promise<string[]> {
  const res = await db.execute<{ site: string }>(sql`
    select distinct site from batches where site is not null and ${siteIn(sql`site`, sites)} order by site`);
  return res.rows.map((r) => r.site);
}
