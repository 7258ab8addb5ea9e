import { type DbOrTx, getBatch, getStats } from "@garbage/db";
import { sql } from "drizzle-orm";
import { expect } from "vitest";
import { waitFor } from "./helpers";

export async function resultCount(db: DbOrTx, batchId: string): Promise<number> {
  const res = await db.execute<{ n: string }>(
    sql`select count(*) as n from results where batch_id = ${batchId}`,
  );
  return Number(res.rows[0]?.n ?? 0);
}

export async function waitForResults(db: DbOrTx, batchId: string, total: number, timeoutMs: number) {
  await waitFor(
    `${total} results for batch ${batchId}`,
    async () => (await resultCount(db, batchId)) === total,
    timeoutMs,
    100,
  ).catch(async (err: Error) => {
    throw new Error(`${err.message} (has ${await resultCount(db, batchId)})`);
  });
}

/**
 * Every image of the batch has exactly one result, the batch counters and status agree with the results, and
 * the class_stats rollup of the batch's (unique) site equals the results: nothing lost, nothing counted twice.
 */
export async function expectBatchAccountedFor(db: DbOrTx, batchId: string, site: string) {
  const perImage = await db.execute<{ images: string; with_one: string; with_more: string }>(sql`
    select count(*) as images,
      count(*) filter (where n = 1) as with_one, count(*) filter (where n > 1) as with_more
    from (select i.id, count(r.image_id) as n from images i left join results r on r.image_id = i.id
          where i.batch_id = ${batchId} group by i.id) t`);
  const counts = perImage.rows[0];
  expect(Number(counts?.with_one)).toBe(Number(counts?.images));
  expect(Number(counts?.with_more)).toBe(0);

  const byLabel = await db.execute<{ label: string; n: string }>(sql`
    select case when status = 'failed' then '' else label end as label, count(*) as n
    from results where batch_id = ${batchId} group by 1`);
  const results = new Map(byLabel.rows.map((r) => [r.label, Number(r.n)]));
  const total = [...results.values()].reduce((a, b) => a + b, 0);
  const failed = results.get("") ?? 0;

  const batch = await getBatch(db, batchId);
  expect(batch).toMatchObject({
    total,
    processed: total,
    failed,
    status: failed > 0 ? "completed_with_errors" : "completed",
  });
  expect(batch?.completedAt).toBeInstanceOf(Date);

  const stats = await getStats(db, {
    from: new Date(0),
    to: new Date(Date.now() + 86_400_000),
    bucket: "day",
    site,
    threshold: 0.5,
  });
  expect({ total: stats.total, failed: stats.failed }).toEqual({ total, failed });
  const statsByLabel = Object.fromEntries(stats.classes.map((c) => [c.label, c.count]));
  results.delete("");
  expect(statsByLabel).toEqual(Object.fromEntries(results));
}
