import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Harness, json, openHarness, type TestApp } from "./helpers";
import { bearer, classify, ok, rollupAndRecount, sites, uiApp, upload } from "./ui-helpers";

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

const CAPTURED = "2011-01-01T10:20:00Z";
const WINDOW = "from=2011-01-01T00:00:00Z&to=2011-01-02T00:00:00Z&bucket=hour";

const review = (imageId: string, key: string, body: unknown) =>
  t.app.request(`/v1/results/${imageId}/review`, {
    method: "PUT",
    headers: { ...bearer(key), "content-type": "application/json" },
    body: JSON.stringify(body),
  });

interface Stats {
  reviewed: number;
  changed: number;
  changedRate: number | null;
  classes: { label: string; count: number; reviewed: number; changed: number }[];
  series: { counts: Record<string, number>; reviewed: number; changed: number; changedRate: number | null }[];
}
const stats = async (key: string, site: string) =>
  json<Stats>(await t.app.request(`/v1/stats?${WINDOW}&site=${site}`, { headers: bearer(key) }));
const counts = (s: Stats) => Object.fromEntries(s.classes.map((c) => [c.label, c.count]));

/** Four images of `site`: two reddish (one flagged), one greenish (flagged), one failed. */
async function seed(site: string) {
  const { batchId, imageIds } = await upload(t, "alpha", { site, capturedAt: CAPTURED }, [
    [200, 10, 10],
    [200, 10, 10],
    [10, 200, 10],
    [9, 9, 9],
  ]);
  const [a, b, c, d] = imageIds as [string, string, string, string];
  await classify(h, [
    ok(a, "reddish", 0.95),
    ok(b, "reddish", 0.4, true),
    ok(c, "greenish", 0.45, true),
    { imageId: d, status: "failed", errorCode: "corrupt" },
  ]);
  return { batchId, a, b, c, d };
}

describe("PUT /v1/results/{imageId}/review", () => {
  it("moves a corrected image to its new class in /v1/stats, counts reviewed/changed, and undoes on re-review", async () => {
    const { north, apiKeys } = sites();
    t = await uiApp(h, { apiKeys });
    const { a, b } = await seed(north);
    const before = await stats("alpha", north);
    expect(counts(before)).toEqual({ reddish: 2, greenish: 1 });
    expect([before.reviewed, before.changed, before.changedRate]).toEqual([0, 0, null]);

    const corrected = await review(b, "alpha", { label: "bluish", reviewer: "Ada" });
    expect(corrected.status).toBe(200);
    expect(await json(corrected)).toMatchObject({
      imageId: b,
      modelLabel: "reddish",
      label: "bluish",
      changed: true,
      reviewer: "Ada",
      reviewedAt: expect.any(String),
    });
    const confirmed = await json(await review(a, "alpha", { label: "reddish" }));
    // An env key has no name: the review is recorded under its principal id.
    expect(confirmed).toMatchObject({
      changed: false,
      reviewer: expect.stringMatching(/^env:[0-9a-f]{16}$/),
    });

    let s = await stats("alpha", north);
    expect(counts(s)).toEqual({ reddish: 1, greenish: 1, bluish: 1 });
    expect([s.reviewed, s.changed, s.changedRate]).toEqual([2, 1, 0.5]);
    expect(s.series).toEqual([
      expect.objectContaining({
        counts: { reddish: 1, greenish: 1, bluish: 1 },
        reviewed: 2,
        changed: 1,
        changedRate: 0.5,
      }),
    ]);
    expect(s.classes.find((c) => c.label === "bluish")).toMatchObject({ count: 1, reviewed: 1, changed: 1 });

    // Re-review: b back to its model label (no longer a change), a to greenish (now one).
    await review(b, "alpha", { label: "reddish" });
    await review(a, "alpha", { label: "greenish" });
    s = await stats("alpha", north);
    expect(counts(s)).toEqual({ reddish: 1, greenish: 2 });
    expect([s.reviewed, s.changed, s.changedRate]).toEqual([2, 1, 0.5]);
    const { rollup, fresh } = await rollupAndRecount(h, north);
    expect(rollup).toEqual(fresh);
  });

  it("keeps statistics equal to a fresh count under concurrent reviews of one image", async () => {
    const { north, apiKeys } = sites();
    t = await uiApp(h, { apiKeys });
    const { b, c } = await seed(north);
    const labels = ["bluish", "greenish", "reddish", "bluish", "greenish", "reddish", "bluish", "greenish"];
    const answers = await Promise.all(
      labels.flatMap((label) => [review(b, "alpha", { label }), review(c, "root", { label })]),
    );
    expect(answers.map((r) => r.status)).toEqual(answers.map(() => 200));
    const { rollup, fresh } = await rollupAndRecount(h, north);
    expect(rollup).toEqual(fresh);
    const s = await stats("alpha", north);
    expect(s.reviewed).toBe(2);
    expect(Object.values(counts(s)).reduce((x, y) => x + y, 0)).toBe(3);
  });

  it("answers 400 for an unknown label or bad body, 404 for another site's image, 409 without an ok result", async () => {
    const { north, south, apiKeys } = sites();
    t = await uiApp(h, { apiKeys });
    const { a, d } = await seed(north);
    const unknown = await review(a, "alpha", { label: "cardboard" });
    expect(unknown.status).toBe(400);
    expect(await json(unknown)).toMatchObject({
      code: "unknown_label",
      message: expect.stringContaining("reddish"),
    });
    for (const body of [
      {},
      { label: 3 },
      { label: "reddish", reviewer: "x".repeat(101) },
      { label: "reddish", reviewer: "a\nb" },
    ]) {
      expect((await review(a, "alpha", body)).status, JSON.stringify(body)).toBe(400);
    }
    expect((await review("not-a-uuid", "alpha", { label: "reddish" })).status).toBe(400);

    const hidden = await review(a, "beta", { label: "reddish" });
    expect(hidden.status).toBe(404);
    expect(await json(hidden)).toMatchObject({ code: "not_found" });
    expect((await review("00000000-0000-4000-8000-000000000000", "root", { label: "reddish" })).status).toBe(
      404,
    );

    const failed = await review(d, "alpha", { label: "reddish" });
    expect(failed.status).toBe(409);
    expect(await json(failed)).toMatchObject({ code: "not_reviewable" });
    const queued = (await upload(t, "beta", { site: south }, [[1, 2, 3]])).imageIds[0] as string;
    const notYet = await review(queued, "beta", { label: "reddish" });
    expect(notYet.status).toBe(409);
    // None of the refused requests reached the statistics.
    expect((await stats("alpha", north)).reviewed).toBe(0);
  });

  it("answers 503 model_unavailable when the API has no manifest to check labels against", async () => {
    const { makeApp } = await import("./helpers");
    t = await makeApp(h);
    const res = await review("00000000-0000-4000-8000-000000000000", "x", { label: "reddish" });
    expect(res.status).toBe(503);
    expect(await json(res)).toMatchObject({ code: "model_unavailable" });
  });
});

describe("GET /v1/review", () => {
  it("lists flagged, unreviewed ok results of the key's sites, oldest first, until they are reviewed", async () => {
    const { north, south, apiKeys } = sites();
    t = await uiApp(h, { apiKeys });
    const first = await seed(north);
    const second = await seed(north);
    await upload(t, "beta", { site: south }, [[1, 1, 1]]);

    const page1 = await json<{ items: { imageId: string }[]; nextCursor: string | null; remaining: number }>(
      await t.app.request(`/v1/review?site=${north}&limit=3`, { headers: bearer("alpha") }),
    );
    expect(page1.remaining).toBe(4);
    expect(page1.items.map((i) => i.imageId)).toEqual([first.b, first.c, second.b]);
    expect(page1.items[0]).toMatchObject({
      batchId: first.batchId,
      filename: "img-1.png",
      site: north,
      label: "reddish",
      confidence: 0.4,
      reviewReasons: ["low_confidence"],
      createdAt: expect.any(String),
    });
    const page2 = await json<{ items: { imageId: string }[]; nextCursor: string | null }>(
      await t.app.request(`/v1/review?site=${north}&limit=3&cursor=${page1.nextCursor}`, {
        headers: bearer("alpha"),
      }),
    );
    expect(page2.items.map((i) => i.imageId)).toEqual([second.c]);
    expect(page2.nextCursor).toBeNull();

    await review(first.b, "alpha", { label: "reddish" });
    const after = await json<{ items: { imageId: string }[]; remaining: number }>(
      await t.app.request("/v1/review", { headers: bearer("alpha") }),
    );
    expect(after.remaining).toBe(3);
    expect(after.items.map((i) => i.imageId)).not.toContain(first.b);

    const beta = await json<{ items: unknown[]; remaining: number }>(
      await t.app.request(`/v1/review?site=${north}`, { headers: bearer("beta") }),
    );
    expect(beta).toMatchObject({ items: [], remaining: 0 });
    expect((await t.app.request("/v1/review?cursor=zzz", { headers: bearer("alpha") })).status).toBe(400);
  });
});

describe("GET /v1/stats.csv", () => {
  it("has one row per bucket and class with the reviewed and changed counts", async () => {
    const { north, apiKeys } = sites();
    t = await uiApp(h, { apiKeys });
    const { b } = await seed(north);
    await review(b, "alpha", { label: "bluish" });
    const res = await t.app.request(`/v1/stats.csv?${WINDOW}&site=${north}`, { headers: bearer("alpha") });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/csv/);
    expect(res.headers.get("content-disposition")).toMatch(/^attachment/);
    const lines = (await res.text()).trimEnd().split("\r\n");
    // No audits here: the estimate columns stay empty (a review is not a sample), totals close the file.
    const none = ",,,,,,,,,";
    expect(lines).toEqual([
      "bucket,class,count,share,needs_review,reviewed,changed,corrected_share,corrected_low,corrected_high," +
        "precision,precision_low,precision_high,accuracy,accuracy_low,accuracy_high",
      `2011-01-01T10:00:00.000Z,bluish,1,${1 / 3},1,1,1${none}`,
      `2011-01-01T10:00:00.000Z,greenish,1,${1 / 3},1,0,0${none}`,
      `2011-01-01T10:00:00.000Z,reddish,1,${1 / 3},0,0,0${none}`,
      `total,bluish,1,${1 / 3},1,1,1${none}`,
      `total,greenish,1,${1 / 3},1,0,0${none}`,
      `total,reddish,1,${1 / 3},0,0,0${none}`,
    ]);
    expect(
      (await t.app.request(`/v1/stats.csv?${WINDOW}&site=${north}`, { headers: bearer("beta") })).status,
    ).toBe(403);
  });
});
