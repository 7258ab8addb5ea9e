import { randomUUID } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import {
  createBatch,
  createDb,
  type DbHandle,
  ensureDatabase,
  migrate,
  recordResults,
  reviews,
  writeReview,
} from "@garbage/db";
import { createStore } from "@garbage/storage";
import { inArray } from "drizzle-orm";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prepareSite } from "../src/adapt/site-data.js";

const DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/garbage_test";
const CLASSES = ["cardboard", "glass", "metal", "paper", "plastic", "trash"];
let handle: DbHandle;
let dir: string;

beforeAll(async () => {
  await ensureDatabase(DATABASE_URL);
  handle = createDb(DATABASE_URL, { max: 2 });
  await migrate(handle.db);
  dir = await mkdtemp(path.join(tmpdir(), "adapt-site-"));
});
afterAll(async () => {
  await handle?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("npm run adapt --site: a site's reviews straight from Postgres and storage", () => {
  it("writes each reviewed photo upright under its reviewed label and records the latest review time", async () => {
    const storeUrl = pathToFileURL(path.join(dir, "store")).href;
    const store = createStore(storeUrl);
    const site = `adapt-${randomUUID().slice(0, 8)}`;
    // A tall photo stored with EXIF orientation 6 (rotate 90 degrees): served upright, so prepared upright.
    const photo = (r: number) =>
      sharp({ create: { width: 40, height: 20, channels: 3, background: { r, g: 90, b: 90 } } })
        .jpeg()
        .withMetadata({ orientation: 6 })
        .toBuffer();
    const images = await Promise.all(
      [10, 80, 160, 240].map(async (r, index) => {
        const id = randomUUID();
        const bytes = await photo(r);
        await store.put(`t/${id}`, bytes);
        return {
          id,
          index,
          storageKey: `t/${id}`,
          bytes: bytes.length,
          contentType: "image/jpeg",
          data: bytes,
        };
      }),
    );
    await createBatch(handle.db, { site, images });
    await recordResults(
      handle.db,
      images.map((img) => ({ imageId: img.id, status: "ok" as const, label: "paper", confidence: 0.6 })),
    );
    const review = (i: number, label: string) =>
      writeReview(handle.db, { imageId: images[i]?.id as string, label, reviewer: "test", sites: null });
    await review(0, "paper");
    await review(1, "glass");
    await review(2, "glass");
    // Image 3 was never reviewed: not training data.

    const out = path.join(dir, "prepared");
    const data = await prepareSite(site, CLASSES, out, { databaseUrl: DATABASE_URL, storageUrl: storeUrl });
    expect(data.images).toBe(3);
    expect(data.perClass).toEqual({ paper: 1, glass: 2 });
    expect((await readdir(path.join(out, "glass"))).sort()).toEqual(
      [`${images[1]?.id}.jpg`, `${images[2]?.id}.jpg`].sort(),
    );
    const meta = await sharp(path.join(out, "paper", `${images[0]?.id}.jpg`)).metadata();
    expect([meta.width, meta.height]).toEqual([20, 40]);
    const rows = await handle.db
      .select({ at: reviews.reviewedAt })
      .from(reviews)
      .where(
        inArray(
          reviews.imageId,
          images.slice(0, 3).map((i) => i.id),
        ),
      );
    const latest = Math.max(...rows.map((r) => r.at.getTime()));
    expect(data.dataUntil).toBe(new Date(latest).toISOString());
  });
});
