import { randomBytes, randomUUID } from "node:crypto";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { sql } from "drizzle-orm";
import { migrate as drizzleMigrate } from "drizzle-orm/node-postgres/migrator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createBatch,
  createDb,
  type DbHandle,
  dropDatabase,
  ensureDatabase,
  listReviewQueue,
  MIGRATIONS_FOLDER,
  migrate,
  type ResultInput,
  recordResults,
  writeReview,
} from "../src/index";
import { openTestDb, TEST_DATABASE_URL } from "./helpers";

let handle: DbHandle;
beforeAll(async () => {
  handle = await openTestDb();
});
afterAll(async () => {
  await handle?.close();
});

const result = (imageId: string, flagged: boolean): ResultInput => ({
  imageId,
  status: "ok",
  label: "glass",
  confidence: flagged ? 0.3 : 0.9,
  review: { needsReview: flagged, lowConfidence: flagged, unfamiliar: false, distance: null },
});

async function waiting(db: DbHandle["db"], site: string) {
  const page = await listReviewQueue(db, { sites: [site], limit: 10 });
  return { ids: page.items.map((i) => i.imageId), remaining: page.remaining };
}

describe("the review queue", () => {
  it("holds flagged results until someone reviews them; a second review does not bring one back", async () => {
    const site = `queue-${randomUUID()}`;
    const images = Array.from({ length: 4 }, (_, index) => ({
      index,
      storageKey: `q/${randomUUID()}`,
      bytes: 1,
    }));
    const created = await createBatch(handle.db, { site, images });
    const [a, b, c, d] = created.images.map((i) => i.id) as [string, string, string, string];
    await recordResults(handle.db, [result(a, true), result(b, false), result(c, true), result(d, true)]);
    expect(await waiting(handle.db, site)).toEqual({ ids: [a, c, d], remaining: 3 });

    const review = (imageId: string, label: string) =>
      writeReview(handle.db, { imageId, label, reviewer: "t", sites: [site] });
    await review(c, "paper");
    // Confirming an unflagged result is allowed and leaves the queue as it was.
    await review(b, "glass");
    expect(await waiting(handle.db, site)).toEqual({ ids: [a, d], remaining: 2 });
    await review(c, "glass");
    expect(await waiting(handle.db, site)).toEqual({ ids: [a, d], remaining: 2 });
  });
});

describe("migration 0007 (results.awaiting_review)", () => {
  it("puts exactly the flagged, unreviewed results of an existing database in the queue", async () => {
    const url = new URL(TEST_DATABASE_URL);
    url.pathname = `/${url.pathname.slice(1)}_${randomBytes(4).toString("hex")}`;
    const before = await mkdtemp(path.join(tmpdir(), "migrations-"));
    await ensureDatabase(url.href);
    const scratch = createDb(url.href, { max: 2 });
    try {
      // The migrations as they were before 0007: the same files, the journal cut after 0006.
      await cp(MIGRATIONS_FOLDER, before, { recursive: true });
      const journalFile = path.join(before, "meta/_journal.json");
      const journal = JSON.parse(await readFile(journalFile, "utf8"));
      journal.entries = journal.entries.filter((e: { idx: number }) => e.idx < 7);
      await writeFile(journalFile, JSON.stringify(journal));
      await drizzleMigrate(scratch.db, { migrationsFolder: before });

      const site = "old";
      const created = await createBatch(scratch.db, {
        site,
        images: Array.from({ length: 3 }, (_, index) => ({ index, storageKey: `m/${index}`, bytes: 1 })),
      });
      const [flagged, reviewed, confident] = created.images.map((i) => i.id) as [string, string, string];
      const batchId = created.batch.id;
      await scratch.db.execute(sql`
        insert into results (image_id, batch_id, status, label, confidence, needs_review, review_reasons) values
          (${flagged}, ${batchId}, 'ok', 'glass', 0.3, true, '{low_confidence}'),
          (${reviewed}, ${batchId}, 'ok', 'glass', 0.3, true, '{low_confidence}'),
          (${confident}, ${batchId}, 'ok', 'glass', 0.9, false, '{}')`);
      await scratch.db.execute(sql`
        insert into reviews (image_id, label, model_label, changed, reviewer)
        values (${reviewed}, 'paper', 'glass', true, 't')`);

      await migrate(scratch.db);
      const rows = await scratch.db.execute<{ image_id: string; awaiting_review: boolean }>(
        sql`select image_id, awaiting_review from results where batch_id = ${batchId}`,
      );
      expect(new Map(rows.rows.map((r) => [r.image_id, r.awaiting_review]))).toEqual(
        new Map([
          [flagged, true],
          [reviewed, false],
          [confident, false],
        ]),
      );
      expect(await waiting(scratch.db, site)).toEqual({ ids: [flagged], remaining: 1 });
    } finally {
      await scratch.close();
      await dropDatabase(url.href);
      await rm(before, { recursive: true, force: true });
    }
  });
});
