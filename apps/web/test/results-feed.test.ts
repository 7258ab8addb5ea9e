/**
 * The batch page's incremental reads (src/results-feed.ts) against the real API (createApp on Postgres):
 * pages fill in as results are recorded the way the worker records them, and a poll reads again only the
 * pages that can still change.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Harness, json, openHarness, type TestApp } from "../../api/test/helpers";
import { bearer, classify, ok, sites, uiApp, upload } from "../../api/test/ui-helpers";
import { advanceDone, type Chunk, type FeedOptions, fetchChunk, refreshChunks } from "../src/results-feed";
import type { ResultItem } from "../src/types";

let h: Harness;
let t: TestApp;
beforeAll(async () => {
  h = await openHarness();
});
afterEach(async () => {
  await t?.dispose();
});
afterAll(async () => {
  await h?.close();
});

/** A batch of seven images at a fresh site, and a reader that records every path it asks for. */
async function sevenImages() {
  const { north, apiKeys } = sites();
  t = await uiApp(h, { apiKeys });
  const colours = Array.from({ length: 7 }, (_, i): [number, number, number] => [i * 30, 10, 10]);
  const { batchId, imageIds } = await upload(t, "alpha", { site: north }, colours);
  const asked: string[] = [];
  const get = async <T>(path: string): Promise<T> => {
    asked.push(path);
    const res = await t.app.request(path, { headers: bearer("alpha") });
    if (!res.ok) throw new Error(`${path}: ${res.status}`);
    return json<T>(res);
  };
  const record = (labels: Record<number, string>) =>
    classify(
      h,
      Object.entries(labels).map(([i, label]) => ok(imageIds[Number(i)] as string, label, 0.9)),
    );
  return { batchId, imageIds, asked, get, record };
}

const ids = (chunks: Chunk[]) => chunks.flatMap((c) => c.items.map((r: ResultItem) => r.imageId));
const query = (path: string) => new URL(path, "http://x").search;

describe("incremental batch results", () => {
  it("pages through every result and re-reads only the pages that still had queued images", async () => {
    const { batchId, imageIds, asked, get, record } = await sevenImages();
    const options: FeedOptions = { get, pageSize: 3, probeSize: 2, probePages: 5 };
    await record({ 0: "reddish", 1: "reddish", 2: "bluish", 4: "greenish" });

    let done = await advanceDone(batchId, -1, options);
    expect(done).toBe(1);
    let chunks = [await fetchChunk(batchId, null, {}, done, options)];
    chunks.push(await fetchChunk(batchId, chunks[0]?.next ?? null, {}, done, options));
    expect(ids(chunks)).toEqual(imageIds.slice(0, 6));
    expect(chunks.map((c) => [c.next, c.settled])).toEqual([
      ["2", false],
      ["5", false],
    ]);
    expect(chunks[1]?.items.map((r) => r.status)).toEqual(["queued", "ok", "queued"]);

    await record({ 3: "reddish", 5: "bluish", 6: "reddish" });
    done = await advanceDone(batchId, done, options);
    expect(done).toBe(Number.POSITIVE_INFINITY);
    asked.length = 0;
    chunks = await refreshChunks(batchId, chunks, {}, done, options);
    expect(asked.map(query)).toEqual(["?limit=3", "?cursor=2&limit=3"]);
    expect(chunks.every((c) => c.settled)).toBe(true);
    expect(chunks.flatMap((c) => c.items.map((r) => r.status))).toEqual(Array(6).fill("ok"));
    // The seventh was never loaded (no "load more" yet): the page still says there is more.
    expect(chunks.at(-1)?.next).toBe("5");

    asked.length = 0;
    expect(await refreshChunks(batchId, chunks, {}, done, options)).toEqual(chunks);
    expect(asked).toEqual([]);
  });

  it("keeps a filtered view current: new matches appear, pages re-end, settled pages are not read again", async () => {
    const { batchId, imageIds, asked, get, record } = await sevenImages();
    const options: FeedOptions = { get, pageSize: 2, probeSize: 2, probePages: 5 };
    const filter = { label: "reddish" };
    await record({ 0: "reddish", 1: "bluish" });

    let done = await advanceDone(batchId, -1, options);
    expect(done).toBe(1);
    let chunks = [await fetchChunk(batchId, null, filter, done, options)];
    expect(ids(chunks)).toEqual([imageIds[0]]);
    expect(chunks[0]).toMatchObject({ next: null, settled: false });

    await record({ 2: "reddish", 3: "reddish", 4: "bluish" });
    done = await advanceDone(batchId, done, options);
    expect(done).toBe(3);
    chunks = await refreshChunks(batchId, chunks, filter, done, options);
    expect(ids(chunks)).toEqual([imageIds[0], imageIds[2]]);
    // It ends at image 2, and every image up to 3 is final: this page will not change.
    expect(chunks[0]).toMatchObject({ next: "2", settled: true });
    chunks.push(await fetchChunk(batchId, "2", filter, done, options));
    expect(chunks[1]).toMatchObject({ next: null, settled: false });

    await record({ 5: "reddish", 6: "bluish" });
    done = await advanceDone(batchId, done, options);
    asked.length = 0;
    chunks = await refreshChunks(batchId, chunks, filter, done, options);
    expect(asked.map(query)).toEqual(["?cursor=2&limit=2&label=reddish"]);
    expect(ids(chunks)).toEqual([0, 2, 3, 5].map((i) => imageIds[i]));
    expect(chunks.every((c) => c.settled)).toBe(true);
  });
});
