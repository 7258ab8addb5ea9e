/**
 * POST /v1/results (the agent's local mode) and POST /v1/batches' imageCapturedAt, on real Postgres: results
 * are recorded with the batch and counted in /v1/stats once, a retry with the same Idempotency-Key writes
 * nothing, only the photos sent are stored, and bad payloads leave nothing behind.
 */
import { createHash, randomUUID } from "node:crypto";
import { auditPicked } from "@garbage/stats";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { form, type Harness, jpeg, json, makeApp, openHarness, type TestApp } from "./helpers";

let h: Harness;
let t: TestApp | undefined;
beforeAll(async () => {
  h = await openHarness();
});
afterEach(async () => {
  await t?.dispose();
  t = undefined;
});
afterAll(async () => {
  await h?.close();
});

const T0 = "2026-11-26T10:00:00.000Z";
const T1 = "2026-11-26T10:07:00.000Z";

function item(over: Record<string, unknown> = {}) {
  return {
    id: randomUUID(),
    filename: "a.jpg",
    capturedAt: T0,
    bytes: 1234,
    status: "ok",
    label: "glass",
    confidence: 0.9,
    top: [{ label: "glass", confidence: 0.9 }],
    review: { needsReview: false, lowConfidence: false, unfamiliar: false, distance: 0.1 },
    ...over,
  };
}

const ingest = (app: TestApp["app"], body: FormData, key = randomUUID()) =>
  app.request("/v1/results", { method: "POST", body, headers: { "Idempotency-Key": key } });

async function imagesOf(batchId: string) {
  const res = await h.db.pool.query<{ id: string; storage_key: string | null; captured_at: Date }>(
    "select id, storage_key, captured_at from images where batch_id = $1 order by index",
    [batchId],
  );
  return res.rows;
}

async function stats(app: TestApp["app"], site: string) {
  const q = `site=${site}&from=2026-11-26T00:00:00Z&to=2026-11-27T00:00:00Z&bucket=hour`;
  return json<{ total: number; needsReview: number; classes: { label: string; count: number }[] }>(
    await app.request(`/v1/stats?${q}`),
  );
}

describe("POST /v1/results", () => {
  it("records results and counts them once; a replay writes nothing; only sent photos are stored", async () => {
    t = await makeApp(h);
    const site = `ingest-${randomUUID()}`;
    const photo = await jpeg(10, 200, 10);
    const flagged = item({
      filename: "flagged.jpg",
      capturedAt: T1,
      image: true,
      label: "plastic",
      confidence: 0.3,
      review: { needsReview: true, lowConfidence: true, unfamiliar: false, distance: 0.2 },
    });
    const plain = item({ sha256: createHash("sha256").update("x").digest("hex") });
    const failed = {
      id: randomUUID(),
      capturedAt: T0,
      bytes: 9,
      status: "failed",
      error: { code: "x", message: "y" },
    };
    const body = () =>
      form([{ data: photo, filename: "flagged.jpg", type: "image/jpeg" }], {
        results: JSON.stringify({
          site,
          line: "L",
          camera: "C",
          modelVersion: "m@1",
          items: [plain, flagged, failed],
        }),
      });
    const key = randomUUID();
    const res = await ingest(t.app, body(), key);
    expect(res.status).toBe(201);
    const first = await json<{ id: string; status: string; total: number; processed: number }>(res);
    expect(first).toMatchObject({ status: "completed_with_errors", total: 3, processed: 3 });

    const replay = await ingest(t.app, body(), key);
    expect(replay.status).toBe(201);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect((await json<{ id: string }>(replay)).id).toBe(first.id);

    const rows = await imagesOf(first.id);
    expect(rows.map((r) => r.id)).toEqual([plain.id, flagged.id, failed.id]);
    expect(rows.map((r) => r.storage_key !== null)).toEqual([false, true, false]);
    expect(rows[1]?.captured_at.toISOString()).toBe(T1);
    expect(await t.storedFiles()).toHaveLength(1);

    const s = await stats(t.app, site);
    expect(s.total).toBe(3);
    expect(s.needsReview).toBe(1);
    expect(Object.fromEntries(s.classes.filter((c) => c.count > 0).map((c) => [c.label, c.count]))).toEqual({
      glass: 1,
      plastic: 1,
    });
    const result = await h.db.pool.query<{ model_version: string }>(
      "select model_version from results where image_id = $1",
      [flagged.id],
    );
    expect(result.rows[0]?.model_version).toBe("m@1");
    // No auditRate sent: nothing picked for audit.
    const audits = await h.db.pool.query("select 1 from results where batch_id = $1 and audit", [first.id]);
    expect(audits.rowCount).toBe(0);
    // The flagged photo is there for the review page.
    expect((await t.app.request(`/v1/images/${flagged.id}`)).status).toBe(200);
  });

  it("refuses a missing key, photos that do not match the items, and bad results; keeps nothing", async () => {
    t = await makeApp(h);
    const photo = await jpeg(10, 10, 200);
    const results = (items: unknown[]) => JSON.stringify({ site: "s", modelVersion: "m@1", items });
    const noKey = await t.app.request("/v1/results", {
      method: "POST",
      body: form([], { results: results([item()]) }),
    });
    expect(noKey.status).toBe(400);
    const mismatch = await ingest(
      t.app,
      form([{ data: photo, filename: "x.jpg" }], { results: results([item()]) }),
    );
    expect(mismatch.status).toBe(400);
    const bad = await ingest(t.app, form([], { results: results([item({ confidence: 2 })]) }));
    expect(bad.status).toBe(400);
    const notJson = await ingest(t.app, form([], { results: "{" }));
    expect(notJson.status).toBe(400);
    expect(await t.storedFiles()).toHaveLength(0);
  });
});

describe("POST /v1/results auditRate", () => {
  it("records the audit picks of the device's rate, the API's rule on the device's ids", async () => {
    t = await makeApp(h);
    const items = Array.from({ length: 40 }, () => item());
    const res = await ingest(
      t.app,
      form([], {
        results: JSON.stringify({ site: `a-${randomUUID()}`, modelVersion: "m@1", auditRate: 0.5, items }),
      }),
    );
    expect(res.status).toBe(201);
    const rows = await h.db.pool.query<{ image_id: string; audit: boolean; audit_rate: number }>(
      "select image_id, audit, audit_rate from results where image_id = any($1::uuid[])",
      [items.map((i) => i.id)],
    );
    expect(rows.rows).toHaveLength(40);
    for (const r of rows.rows) {
      expect(r.audit).toBe(auditPicked(r.image_id, 0.5));
      expect(r.audit_rate).toBe(0.5);
    }
    expect(rows.rows.some((r) => r.audit)).toBe(true);
  });
});

describe("POST /v1/batches imageCapturedAt", () => {
  it("gives each image its own capture time, and must have one entry per image", async () => {
    t = await makeApp(h);
    const files = [
      { data: await jpeg(200, 0, 0), filename: "a.jpg", type: "image/jpeg" },
      { data: await jpeg(0, 200, 0), filename: "b.jpg", type: "image/jpeg" },
    ];
    const ok = await t.app.request("/v1/batches", {
      method: "POST",
      body: form(files, { site: "s", imageCapturedAt: JSON.stringify([T0, T1]) }),
    });
    expect(ok.status).toBe(202);
    const rows = await imagesOf((await json<{ id: string }>(ok)).id);
    expect(rows.map((r) => r.captured_at.toISOString())).toEqual([T0, T1]);
    const short = await t.app.request("/v1/batches", {
      method: "POST",
      body: form(files, { site: "s", imageCapturedAt: JSON.stringify([T0]) }),
    });
    expect(short.status).toBe(400);
  });
});
