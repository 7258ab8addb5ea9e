import { type SQL, sql } from "drizzle-orm";

/**
 * `column in (sites)` for a reader limited to some sites; null is every site (rows without one included). An
 * empty list matches nothing rather than producing `in ()`.
 */
export function siteIn(column: SQL, sites: readonly string[] | null | undefined): SQL {
  if (sites == null) return sql`true`;
  if (sites.length === 0) return sql`false`;
  return sql`${column} in (${sql.join(
    sites.map((s) => sql`${s}`),
    sql`, `,
  )})`;
}

/**
 * A keyset position in a list ordered by (created_at, id). `at` is Postgres's own text of the timestamp: a JS
 * Date keeps milliseconds, the column microseconds, and a rounded cursor would repeat or skip rows.
 */
export interface TimeCursor {
  at: string;
  id: string;
  /** A position within `id` (an image's index in its batch) where rows share a timestamp and an id. */
  n?: number;
}
