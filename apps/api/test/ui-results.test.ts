import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Harness, json, openHarness, type TestApp } from "./helpers";
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

interface Item {
  imageId: string;
  label: string | null;
  effectiveLabel: string | null;
  review: { label: string; reviewer: string; reviewedAt: string } | null;
}

async function reviewed() {
  const { north, apiKeys } = sites();
  t = await uiApp(h, { apiKeys });
  const { batchId, imageIds } = await upload(t, "alpha", { site: north }, [
    [200, 10, 10],
    [200, 10, 10],
    [10, 10, 200],
    [0, 0, 0],
  ]);
  const [a, b, c, d] = imageIds as [string, string, string, string];
  await classify(h, [
    ok(a, "reddish", 0.9),
    ok(b, "reddish", 0.4, true),
    ok(c, "bluish", 0.8),
    { imageId: d, status: "failed", errorCode: "corrupt", errorMessage: "=cmd|' /C calc'!A0" },
  ]);
  const res = await t.app.request(`/v1/results/${b}/review`, {
    method: "PUT",
    headers: { ...bearer("alpha"), "content-type": "application/json" },
    body: JSON.stringify({ label: "greenish", reviewer: 'Ada "QA", line 2' }),
  });
  expect(res.status).toBe(200);
  return { batchId, a, b, c, d };
}

describe("results with reviews", () => {
  it("carry the review and the effective label, and filter on the effective label", async () => {
    const { batchId, a, b, c, d } = await reviewed();
    const page = await json<{ items: Item[] }>(
      await t.app.request(`/v1/batches/${batchId}/results`, { headers: bearer("alpha") }),
    );
    const byId = new Map(page.items.map((i) => [i.imageId, i]));
    expect(byId.get(a)).toMatchObject({ label: "reddish", effectiveLabel: "reddish", review: null });
    expect(byId.get(b)).toMatchObject({
      label: "reddish",
      effectiveLabel: "greenish",
      review: { label: "greenish", reviewer: 'Ada "QA", line 2', reviewedAt: expect.any(String) },
    });
    expect(byId.get(d)).toMatchObject({ effectiveLabel: null, review: null });

    const filter = async (label: string) =>
      (
        await json<{ items: Item[] }>(
          await t.app.request(`/v1/batches/${batchId}/results?label=${label}`, { headers: bearer("alpha") }),
        )
      ).items.map((i) => i.imageId);
    expect(await filter("reddish")).toEqual([a]);
    expect(await filter("greenish")).toEqual([b]);
    expect(await filter("bluish")).toEqual([c]);
    expect(await filter("nothing")).toEqual([]);
  });
});

describe("results downloads", () => {
  it("results.json holds the batch and every result as an attachment", async () => {
    const { batchId, b } = await reviewed();
    const res = await t.app.request(`/v1/batches/${batchId}/results.json`, { headers: bearer("alpha") });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-disposition")).toBe(
      `attachment; filename="batch-${batchId}-results.json"`,
    );
    const body = await json<{ batch: { id: string; total: number }; items: Item[] }>(res);
    expect(body.batch).toMatchObject({ id: batchId, total: 4 });
    expect(body.items).toHaveLength(4);
    expect(body.items[1]).toMatchObject({ imageId: b, effectiveLabel: "greenish" });
  });

  it("results.csv has a row per image, quotes what needs quoting and defuses formulas", async () => {
    const { batchId, a, b, d } = await reviewed();
    const res = await t.app.request(`/v1/batches/${batchId}/results.csv`, { headers: bearer("alpha") });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/csv/);
    expect(res.headers.get("content-disposition")).toMatch(/^attachment; filename=".*\.csv"$/);
    const lines = (await res.text()).trimEnd().split("\r\n");
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(/^image_id,filename,status,label,confidence,effective_label,reviewed_label,/);
    expect(lines[1]).toMatch(new RegExp(`^${a},img-0.png,ok,reddish,0.9,reddish,,,,false,,,reddish:0.9,,$`));
    expect(lines[2]).toContain(`${b},img-1.png,ok,reddish,0.4,greenish,greenish,"Ada ""QA"", line 2",`);
    expect(lines[4]).toMatch(new RegExp(`^${d},img-3.png,failed,.*,corrupt,'=cmd\\|' /C calc'!A0$`));
  });

  it("are 404 for a key that cannot see the batch", async () => {
    const { batchId } = await reviewed();
    for (const ext of ["csv", "json"]) {
      const res = await t.app.request(`/v1/batches/${batchId}/results.${ext}`, { headers: bearer("beta") });
      expect(res.status, ext).toBe(404);
    }
  });
});
