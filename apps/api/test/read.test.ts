import { randomUUID } from "node:crypto";
import { createBatch, type ReviewInput, recordResults } from "@garbage/db";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Harness, json, makeApp, openHarness, type TestApp } from "./helpers";

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

const lowConfidence: ReviewInput = {
  needsReview: true,
  lowConfidence: true,
  unfamiliar: false,
  distance: 0.2,
};
const unfamiliar: ReviewInput = { needsReview: true, lowConfidence: false, unfamiliar: true, distance: 0.9 };

async function seedBatch(n: number, extra: { site?: string; line?: string; capturedAt?: Date } = {}) {
  const images = Array.from({ length: n }, (_, index) => ({
    index,
    filename: `f${index}.jpg`,
    storageKey: `t/${randomUUID()}`,
    bytes: 10,
  }));
  return createBatch(h.db.db, { ...extra, images });
}

describe("GET /v1/batches/:id", () => {
  it("reports progress as the worker records results", async () => {
    t = await makeApp(h);
    const { batch, images } = await seedBatch(2);
    await recordResults(h.db.db, [
      { imageId: images[0]?.id as string, status: "ok", label: "glass", confidence: 0.9 },
    ]);
    expect(await json(await t.app.request(`/v1/batches/${batch.id}`))).toEqual({
      id: batch.id,
      status: "processing",
      total: 2,
      processed: 1,
      failed: 0,
      site: batch.site,
      line: batch.line,
      camera: batch.camera,
      createdAt: batch.createdAt.toISOString(),
      completedAt: null,
    });
    await recordResults(h.db.db, [
      { imageId: images[1]?.id as string, status: "failed", errorCode: "corrupt" },
    ]);
    const done = await json(await t.app.request(`/v1/batches/${batch.id}`));
    expect(done).toMatchObject({
      status: "completed_with_errors",
      processed: 2,
      failed: 1,
      completedAt: expect.any(String),
    });
  });

  it("answers 400 for a malformed id and 404 for an unknown one", async () => {
    t = await makeApp(h);
    for (const path of ["/v1/batches/not-a-uuid", "/v1/batches/not-a-uuid/results"]) {
      const res = await t.app.request(path);
      expect(res.status).toBe(400);
      expect(await json(res)).toMatchObject({ code: "validation_error", requestId: expect.any(String) });
    }
    for (const path of [`/v1/batches/${randomUUID()}`, `/v1/batches/${randomUUID()}/results`]) {
      const res = await t.app.request(path);
      expect(res.status).toBe(404);
      expect(await json(res)).toMatchObject({ code: "not_found" });
    }
    const unknownRoute = await t.app.request("/v1/nothing-here");
    expect(unknownRoute.status).toBe(404);
    expect(await json(unknownRoute)).toMatchObject({ code: "not_found" });
  });
});

describe("GET /v1/batches/:id/results", () => {
  it("pages through every image in upload order", async () => {
    t = await makeApp(h);
    const { batch, images } = await seedBatch(5);
    await recordResults(h.db.db, [
      {
        imageId: images[3]?.id as string,
        status: "ok",
        label: "paper",
        confidence: 0.7,
        top: [
          { label: "paper", confidence: 0.7 },
          { label: "cardboard", confidence: 0.2 },
        ],
      },
    ]);
    const seen: { imageId: string; status: string }[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor === null ? "limit=2" : `limit=2&cursor=${cursor}`;
      const res = await t.app.request(`/v1/batches/${batch.id}/results?${query}`);
      expect(res.status).toBe(200);
      const page = await json<{ items: typeof seen; nextCursor: string | null }>(res);
      seen.push(...page.items);
      cursor = page.nextCursor;
      pages++;
    } while (cursor !== null);
    expect(pages).toBe(3);
    expect(seen.map((i) => i.imageId)).toEqual(images.map((i) => i.id));
    expect(seen[3]).toEqual({
      imageId: images[3]?.id,
      filename: "f3.jpg",
      status: "ok",
      label: "paper",
      confidence: 0.7,
      top: [
        { label: "paper", confidence: 0.7 },
        { label: "cardboard", confidence: 0.2 },
      ],
      needsReview: false,
      reviewReasons: [],
      novelty: null,
      error: null,
      review: null,
      effectiveLabel: "paper",
    });
    expect(seen.filter((i) => i.status === "queued")).toHaveLength(4);
    expect(seen[0]).toMatchObject({ status: "queued", needsReview: null, reviewReasons: [], novelty: null });
  });

  it("filters on needsReview and carries the reasons and novelty of each result", async () => {
    t = await makeApp(h);
    const { batch, images } = await seedBatch(5);
    const id = (i: number) => images[i]?.id as string;
    await recordResults(h.db.db, [
      { imageId: id(0), status: "ok", label: "glass", confidence: 0.4, review: lowConfidence },
      { imageId: id(1), status: "ok", label: "metal", confidence: 0.9 },
      {
        imageId: id(2),
        status: "ok",
        label: "paper",
        confidence: 0.8,
        review: { ...unfamiliar, distance: 0.05, unfamiliar: false, needsReview: false },
      },
      { imageId: id(3), status: "failed", errorCode: "corrupt" },
      { imageId: id(4), status: "ok", label: "trash", confidence: 0.97, review: unfamiliar },
    ]);
    type Item = {
      imageId: string;
      needsReview: boolean | null;
      reviewReasons: string[];
      novelty: number | null;
    };
    const page = async (query: string) => {
      const res = await t.app.request(`/v1/batches/${batch.id}/results?${query}`);
      expect(res.status, query).toBe(200);
      return json<{ items: Item[]; nextCursor: string | null }>(res);
    };
    const flagged = await page("needsReview=true&limit=1");
    expect(flagged.items).toEqual([
      expect.objectContaining({
        imageId: id(0),
        needsReview: true,
        reviewReasons: ["low_confidence"],
        novelty: 0.2,
      }),
    ]);
    const next = await page(`needsReview=true&limit=1&cursor=${flagged.nextCursor}`);
    expect(next.items).toEqual([
      expect.objectContaining({
        imageId: id(4),
        needsReview: true,
        reviewReasons: ["unfamiliar"],
        novelty: 0.9,
      }),
    ]);
    // The cursor counts matches only: no empty page after the last flagged image.
    expect(next.nextCursor).toBeNull();
    const clean = await page("needsReview=false");
    expect(clean.items.map((i) => [i.imageId, i.needsReview, i.novelty])).toEqual([
      [id(1), false, null],
      [id(2), false, 0.05],
      [id(3), false, null],
    ]);
    expect((await page("")).items).toHaveLength(5);

    for (const q of ["needsReview=yes", "needsReview=1", "needsReview=TRUE", "needsReview="]) {
      const res = await t.app.request(`/v1/batches/${batch.id}/results?${q}`);
      expect(res.status, q).toBe(400);
      expect(await json(res)).toMatchObject({
        code: "validation_error",
        message: expect.stringContaining("needsReview"),
        requestId: expect.any(String),
      });
    }
  });

  it("rejects bad cursors and limits", async () => {
    t = await makeApp(h);
    const { batch } = await seedBatch(1);
    for (const q of ["cursor=abc", "cursor=-1", "limit=0", "limit=100000", "limit=x"]) {
      const res = await t.app.request(`/v1/batches/${batch.id}/results?${q}`);
      expect(res.status, q).toBe(400);
    }
  });
});

describe("GET /v1/stats", () => {
  const site = `site-${randomUUID()}`;
  const window = "from=2023-02-01T00:00:00Z&to=2023-02-02T00:00:00Z";

  beforeAll(async () => {
    const a = await seedBatch(4, { site, line: "A", capturedAt: new Date("2023-02-01T08:15:00Z") });
    const b = await seedBatch(3, { site, line: "B", capturedAt: new Date("2023-02-01T09:45:00Z") });
    const [a0, a1, a2, a3] = a.images.map((i) => i.id) as [string, string, string, string];
    const [b0, b1, b2] = b.images.map((i) => i.id) as [string, string, string];
    await recordResults(h.db.db, [
      { imageId: a0, status: "ok", label: "glass", confidence: 0.95 },
      { imageId: a1, status: "ok", label: "glass", confidence: 0.45, review: lowConfidence },
      { imageId: a2, status: "ok", label: "paper", confidence: 0.3, review: lowConfidence },
      { imageId: a3, status: "failed", errorCode: "corrupt" },
      { imageId: b0, status: "ok", label: "paper", confidence: 0.6, review: unfamiliar },
      { imageId: b1, status: "ok", label: "metal", confidence: 0.5 },
      { imageId: b2, status: "ok", label: "glass", confidence: 0.55 },
    ]);
  });

  it("totals, shares, hourly series, low-confidence and review counts match the inserted results", async () => {
    t = await makeApp(h);
    const res = await t.app.request(`/v1/stats?${window}&bucket=hour&site=${site}`);
    expect(res.status).toBe(200);
    const stats = await json<Record<string, unknown>>(res);
    expect(stats).toMatchObject({
      bucket: "hour",
      threshold: 0.5,
      total: 7,
      classified: 6,
      failed: 1,
      lowConfidence: 2,
      needsReview: 3,
      reviewRate: 0.5,
    });
    expect(stats.classes).toEqual([
      {
        label: "glass",
        count: 3,
        share: 0.5,
        lowConfidence: 1,
        needsReview: 1,
        reviewRate: 1 / 3,
        reviewed: 0,
        changed: 0,
      },
      {
        label: "paper",
        count: 2,
        share: 2 / 6,
        lowConfidence: 1,
        needsReview: 2,
        reviewRate: 1,
        reviewed: 0,
        changed: 0,
      },
      {
        label: "metal",
        count: 1,
        share: 1 / 6,
        lowConfidence: 0,
        needsReview: 0,
        reviewRate: 0,
        reviewed: 0,
        changed: 0,
      },
    ]);
    expect(stats.series).toEqual([
      {
        bucket: "2023-02-01T08:00:00.000Z",
        total: 4,
        failed: 1,
        counts: { glass: 2, paper: 1 },
        needsReview: 2,
        reviewRate: 2 / 3,
        reviewed: 0,
        changed: 0,
        changedRate: null,
        quality: null,
      },
      {
        bucket: "2023-02-01T09:00:00.000Z",
        total: 3,
        failed: 0,
        counts: { glass: 1, metal: 1, paper: 1 },
        needsReview: 1,
        reviewRate: 1 / 3,
        reviewed: 0,
        changed: 0,
        changedRate: null,
        quality: null,
      },
    ]);
  });

  it("honours the configured and the requested threshold, line filter and day buckets", async () => {
    t = await makeApp(h, { config: { lowConfidenceThreshold: 0.6 } });
    const configured = await json(await t.app.request(`/v1/stats?${window}&site=${site}`));
    // The stats threshold moves lowConfidence, never the model's own review verdicts.
    expect(configured).toMatchObject({ threshold: 0.6, lowConfidence: 4, needsReview: 3 });
    const requested = await json(await t.app.request(`/v1/stats?${window}&site=${site}&threshold=0.35`));
    expect(requested).toMatchObject({ threshold: 0.35, lowConfidence: 1 });
    const lineB = await json(await t.app.request(`/v1/stats?${window}&site=${site}&line=B&bucket=day`));
    expect(lineB).toMatchObject({
      total: 3,
      needsReview: 1,
      series: [
        {
          bucket: "2023-02-01T00:00:00.000Z",
          total: 3,
          needsReview: 1,
          reviewRate: 1 / 3,
          reviewed: 0,
          changed: 0,
        },
      ],
    });
  });

  it("rejects impossible windows, thresholds and bucket counts", async () => {
    t = await makeApp(h);
    for (const q of [
      "from=2023-02-02T00:00:00Z&to=2023-02-01T00:00:00Z",
      "from=yesterday",
      "bucket=week",
      "threshold=0.33",
      "threshold=2",
      "from=2000-01-01T00:00:00Z&to=2023-01-01T00:00:00Z&bucket=minute",
      "site=plant%001",
      "line=A%0AB",
    ]) {
      const res = await t.app.request(`/v1/stats?${q}`);
      expect(res.status, q).toBe(400);
      expect(await json(res)).toMatchObject({ code: expect.any(String), message: expect.any(String) });
    }
  });
});
