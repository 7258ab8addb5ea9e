import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
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
  writeReview,
} from "@garbage/db";
import { createStore, type ImageStore, reviewedEntries } from "@garbage/storage";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportReviewedCommand } from "../src/export-reviewed";

const DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/garbage_test";
let handle: DbHandle;
let dir: string;
let storeUrl: string;
let store: ImageStore;

beforeAll(async () => {
  await ensureDatabase(DATABASE_URL);
  handle = createDb(DATABASE_URL, { max: 2 });
  await migrate(handle.db);
  dir = await mkdtemp(path.join(tmpdir(), "export-reviewed-"));
  storeUrl = pathToFileURL(path.join(dir, "store")).href;
  store = createStore(storeUrl);
});
afterAll(async () => {
  await handle?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** What the API and worker leave behind: stored bytes, a batch, ok results; then people's reviews. */
async function seed(site: string) {
  const colours = [
    [200, 0, 0],
    [0, 200, 0],
    [0, 0, 200],
    [90, 90, 90],
  ] as const;
  const images = await Promise.all(
    colours.map(async ([r, g, b], index) => {
      const id = randomUUID();
      const bytes = await sharp({ create: { width: 12, height: 12, channels: 3, background: { r, g, b } } })
        .jpeg()
        .toBuffer();
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
  await review(2, "plastic");
  return { images, review };
}

const exportTo = (out: string, site: string) =>
  exportReviewedCommand(["--out", out, "--site", site], { DATABASE_URL, STORAGE_URL: storeUrl });

async function tree(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)))
    .sort();
}

describe("garbage export-reviewed", () => {
  it("writes <class>/<imageId>.jpg for the site's reviewed images and keeps the folder in step on re-export", async () => {
    const site = `export-${randomUUID().slice(0, 8)}`;
    const { images, review } = await seed(site);
    const [a, b, c] = images as [(typeof images)[0], (typeof images)[0], (typeof images)[0]];
    const out = path.join(dir, "out");
    // A file of the person's own in the folder is never touched.
    await mkdir(path.join(out, "notes"), { recursive: true });
    await writeFile(path.join(out, "notes", "readme.txt"), "mine");

    expect(await exportTo(out, site)).toBe(0);
    expect(await tree(out)).toEqual(
      [`glass/${b.id}.jpg`, "notes/readme.txt", `paper/${a.id}.jpg`, `plastic/${c.id}.jpg`].sort(),
    );
    expect(await readFile(path.join(out, "glass", `${b.id}.jpg`))).toEqual(b.data);

    // Relabelled since: the copy under the old class goes, the new one appears.
    await review(0, "glass");
    expect(await exportTo(out, site)).toBe(0);
    expect(await tree(out)).toEqual(
      [`glass/${a.id}.jpg`, `glass/${b.id}.jpg`, "notes/readme.txt", `plastic/${c.id}.jpg`].sort(),
    );
  });

  it("reads the same entries page by page as the API's tar download", async () => {
    const site = `export-${randomUUID().slice(0, 8)}`;
    const { images } = await seed(site);
    const paths: string[] = [];
    for await (const e of reviewedEntries(handle.db, store, { sites: [site], pageSize: 2 }))
      paths.push(e.path);
    expect(paths.sort()).toEqual(
      [`paper/${images[0]?.id}.jpg`, `glass/${images[1]?.id}.jpg`, `plastic/${images[2]?.id}.jpg`].sort(),
    );
    const none: string[] = [];
    for await (const e of reviewedEntries(handle.db, store, { sites: [`${site}-other`] })) none.push(e.path);
    expect(none).toEqual([]);
  });

  it("refuses to run without --out", async () => {
    await expect(exportReviewedCommand([], { DATABASE_URL })).rejects.toThrow(/--out is required/);
  });
});
