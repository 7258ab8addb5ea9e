import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config";
import { DATABASE_URL, type Harness, json, openHarness, type TestApp } from "./helpers";
import { bearer, classify, ok, sites, uiApp, upload } from "./ui-helpers";

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

const withEmbedding = (row: ReturnType<typeof ok>, v: number[]) => ({
  ...row,
  embedding: Float32Array.from(v),
});

const reviewAs = (imageId: string, key: string, label: string) =>
  t.app.request(`/v1/results/${imageId}/review`, {
    method: "PUT",
    headers: { ...bearer(key), "content-type": "application/json" },
    body: JSON.stringify({ label }),
  });

interface Similar {
  items: { imageId: string; batchId: string; filename: string | null; label: string; distance: number }[];
}

describe("GET /v1/results/{imageId}/similar", () => {
  it("lists the nearest reviewed images of the key's sites by embedding, nearest first", async () => {
    const { north, south } = sites();
    // Not an all-sites key: the shared test database holds other runs' reviewed images.
    const apiKeys = parseConfig({
      DATABASE_URL,
      API_KEYS: `alpha:${north},beta:${south},both:${north}|${south}`,
    }).apiKeys;
    t = await uiApp(h, { apiKeys });
    const mine = await upload(t, "alpha", { site: north }, [
      [1, 1, 1],
      [2, 2, 2],
      [3, 3, 3],
      [4, 4, 4],
      [5, 5, 5],
      [7, 7, 7],
    ]);
    const [query, near, far, unreviewed, plain, oldModel] = mine.imageIds as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const other = (await upload(t, "beta", { site: south }, [[6, 6, 6]])).imageIds[0] as string;
    await classify(h, [
      withEmbedding(ok(query, "reddish", 0.5), [1, 0, 0]),
      withEmbedding(ok(near, "reddish", 0.9), [0.9, 0.1, 0]),
      withEmbedding(ok(far, "reddish", 0.9), [0, 1, 0]),
      withEmbedding(ok(unreviewed, "reddish", 0.9), [1, 0, 0]),
      ok(plain, "reddish", 0.9),
      withEmbedding(ok(other, "reddish", 0.9), [1, 0, 0]),
      // Classified by an earlier model: the same width, another embedding space.
      {
        ...withEmbedding(ok(oldModel, "reddish", 0.9), [1, 0, 0]),
        modelVersion: "garbage-resnet50@2026-01-01",
      },
    ]);
    // Replaying the write (a retried job) must not add or change anything.
    await classify(h, [withEmbedding(ok(near, "reddish", 0.9), [0, 0, 1])]);

    const similar = async (id: string, key: string, k = 5) =>
      t.app.request(`/v1/results/${id}/similar?k=${k}`, { headers: bearer(key) });
    expect((await json<Similar>(await similar(query, "alpha"))).items).toEqual([]);

    await reviewAs(near, "alpha", "reddish");
    await reviewAs(far, "alpha", "greenish");
    await reviewAs(plain, "alpha", "bluish");
    await reviewAs(other, "beta", "bluish");
    await reviewAs(oldModel, "alpha", "bluish");

    const alpha = await json<Similar>(await similar(query, "alpha"));
    expect(alpha.items.map((i) => [i.imageId, i.label])).toEqual([
      [near, "reddish"],
      [far, "greenish"],
    ]);
    expect(alpha.items[0]).toMatchObject({ batchId: mine.batchId, filename: "img-1.png" });
    expect(alpha.items[0]?.distance).toBeCloseTo(1 - 0.9 / Math.hypot(0.9, 0.1), 5);
    expect(alpha.items[1]?.distance).toBeCloseTo(1, 5);

    const root = await json<Similar>(await similar(query, "both", 1));
    expect(root.items.map((i) => i.imageId)).toEqual([other]);
    expect(root.items[0]?.distance).toBeCloseTo(0, 5);

    // An image without an embedding has no neighbours; another site's image does not exist for this key.
    expect((await json<Similar>(await similar(plain, "alpha"))).items).toEqual([]);
    expect((await similar(other, "alpha")).status).toBe(404);
    expect((await similar(query, "alpha", 0)).status).toBe(400);
  });
});
