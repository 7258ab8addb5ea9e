import { randomUUID } from "node:crypto";
import { auditPicked } from "@garbage/stats";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createBatch,
  type DbHandle,
  deleteBatch,
  getAuditCounts,
  recordResults,
  writeReview,
} from "../src/index";
import { openTestDb } from "./helpers";

let handle: DbHandle;
beforeAll(async () => {
  handle = await openTestDb();
});
afterAll(async () => {
  await handle?.close();
});

const window = {
  from: new Date(Date.now() - 3_600_000),
  to: new Date(Date.now() + 3_600_000),
  bucket: "day" as const,
};

describe("audit picks and the quality rollup", () => {
  it("stores the pick, moves answers between truths, and deleteBatch takes everything back", async () => {
    const site = `q-${randomUUID()}`;
    const created = await createBatch(handle.db, {
      site,
      images: Array.from({ length: 30 }, (_, index) => ({
        index,
        storageKey: `q/${randomUUID()}`,
        bytes: 1,
      })),
    });
    const ids = created.images.map((i) => i.id);
    await recordResults(handle.db, [
      ...ids.slice(0, 29).map((imageId) => ({
        imageId,
        status: "ok" as const,
        label: "glass",
        confidence: 0.8,
        auditRate: 0.4,
      })),
      { imageId: ids[29] as string, status: "failed", errorCode: "corrupt", auditRate: 0.4 },
    ]);
    const rows = await handle.db.execute<{ image_id: string; audit: boolean; awaiting_audit: boolean }>(
      sql`select image_id, audit, awaiting_audit from results where batch_id = ${created.batch.id}`,
    );
    for (const r of rows.rows) {
      const expected = r.image_id !== ids[29] && auditPicked(r.image_id, 0.4);
      expect(r.audit).toBe(expected);
      expect(r.awaiting_audit).toBe(expected);
    }
    const picked = ids.slice(0, 29).filter((id) => auditPicked(id, 0.4));
    const audited = picked[0] as string;
    const counts = async () => (await getAuditCounts(handle.db, { ...window, site })).total;
    expect((await counts()).reduce((s, c) => s + c.count, 0)).toBe(29);

    await writeReview(handle.db, { imageId: audited, label: "paper", reviewer: "t", sites: null });
    await writeReview(handle.db, { imageId: audited, label: "metal", reviewer: "t", sites: null });
    const after = await counts();
    expect(after.find((c) => c.truth === "metal")).toMatchObject({
      audit: true,
      predicted: "glass",
      count: 1,
    });
    expect(after.find((c) => c.truth === "paper")).toBeUndefined();
    expect(after.filter((c) => c.audit && c.truth === null).reduce((s, c) => s + c.count, 0)).toBe(
      picked.length - 1,
    );
    const waiting = await handle.db.execute(
      sql`select 1 from results where image_id = ${audited} and awaiting_audit`,
    );
    expect(waiting.rows).toHaveLength(0);

    await deleteBatch(handle.db, created.batch.id);
    expect(await counts()).toEqual([]);
  });
});
