import type { AuditCount } from "@garbage/stats";
import { type SQL, sql } from "drizzle-orm";
import type { DbOrTx } from "./client";
import type { StatsBucket } from "./stats";

/** One ok result as the quality rollup sees it. */
export interface QualityRow {
  bucket: Date | string;
  site: string | null;
  line: string | null;
  flagged: boolean;
  auditRate: number;
  audit: boolean;
  predicted: string;
  /** The label a person gave, null while nobody has. */
  truth: string | null;
  sign: 1 | -1;
}

/** Adds or removes results in quality_stats in one statement, keys sorted (no deadlocks between writers). */
export async function updateQualityRollup(tx: DbOrTx, rows: readonly QualityRow[]): Promise<void> {
  const groups = new Map<string, Record<string, unknown> & { count: number }>();
  for (const r of rows) {
    const row = {
      bucket: new Date(r.bucket).toISOString(),
      site: r.site ?? "",
      line: r.line ?? "",
      flagged: r.flagged,
      audit_rate: r.auditRate,
      audit: r.audit,
      predicted: r.predicted,
      truth: r.truth ?? "",
    };
    const key = JSON.stringify(row);
    const g = groups.get(key) ?? { ...row, count: 0 };
    g.count += r.sign;
    groups.set(key, g);
  }
  if (groups.size === 0) return;
  const sorted = [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, g]) => g);
  await tx.execute(sql`
    insert into quality_stats (bucket, site, line, flagged, audit_rate, audit, predicted, truth, count)
    select s.bucket, s.site, s.line, s.flagged, s.audit_rate, s.audit, s.predicted, s.truth, s.count
    from rows from (jsonb_to_recordset(${JSON.stringify(sorted)}::jsonb)
      as (bucket timestamptz, site text, line text, flagged boolean, audit_rate float8, audit boolean,
        predicted text, truth text, count bigint)
    ) with ordinality as s(bucket, site, line, flagged, audit_rate, audit, predicted, truth, count, ord)
    order by s.ord
    on conflict (bucket, site, line, flagged, audit_rate, audit, predicted, truth) do update set
      count = quality_stats.count + excluded.count`);
}

export interface QualityQuery {
  from: Date;
  to: Date;
  bucket: StatsBucket;
  site?: string | null;
  sites?: readonly string[] | null;
  line?: string | null;
}

/** The estimator's input for a range, in total and per bucket (UTC), from the rollup. */
export async function getAuditCounts(
  db: DbOrTx,
  q: QualityQuery,
): Promise<{ total: AuditCount[]; buckets: Map<number, AuditCount[]> }> {
  const filters: SQL[] = [sql`bucket >= ${q.from.toISOString()}`, sql`bucket < ${q.to.toISOString()}`];
  if (q.site != null) filters.push(sql`site = ${q.site}`);
  if (q.sites != null) {
    filters.push(
      q.sites.length > 0
        ? sql`site in (${sql.join(
            q.sites.map((s) => sql`${s}`),
            sql`, `,
          )})`
        : sql`false`,
    );
  }
  if (q.line != null) filters.push(sql`line = ${q.line}`);
  const res = await db.execute<{
    b: Date | string;
    flagged: boolean;
    audit_rate: number;
    audit: boolean;
    predicted: string;
    truth: string;
    count: string;
  }>(sql`
    select date_trunc(${q.bucket}, bucket, 'UTC') as b, flagged, audit_rate, audit, predicted, truth,
      sum(count)::bigint as count
    from quality_stats where ${sql.join(filters, sql` and `)}
    group by 1, 2, 3, 4, 5, 6 having sum(count) <> 0 order by 1`);
  const total = new Map<string, AuditCount>();
  const buckets = new Map<number, AuditCount[]>();
  for (const r of res.rows) {
    const row: AuditCount = {
      flagged: r.flagged,
      rate: Number(r.audit_rate),
      audit: r.audit,
      predicted: r.predicted,
      truth: r.truth === "" ? null : r.truth,
      count: Number(r.count),
    };
    const at = new Date(r.b).getTime();
    const list = buckets.get(at) ?? [];
    list.push(row);
    buckets.set(at, list);
    const key = JSON.stringify([row.flagged, row.rate, row.audit, row.predicted, row.truth]);
    const t = total.get(key);
    if (t) t.count += row.count;
    else total.set(key, { ...row });
  }
  return { total: [...total.values()], buckets };
}
