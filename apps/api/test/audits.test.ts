import { randomUUID } from "node:crypto";
import { createBatch, deleteBatch, type ResultInput, type ReviewInput, recordResults } from "@garbage/db";
import type { ModelManifest } from "@garbage/inference";
import { auditPicked } from "@garbage/stats";
import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Harness, json, makeApp, openHarness, type TestApp } from "./helpers";

/** Blind audits on real Postgres: the pick, the blind queue, answers, and /v1/stats' quality section. */

const CLASSES = ["cardboard", "glass", "metal", "paper", "plastic", "trash"];
const model = { classes: CLASSES } as unknown as ModelManifest;
const flag: ReviewInput = { needsReview: true, lowConfidence: true, unfamiliar: false, distance: null };
const noFlag: ReviewInput = { needsReview: false, lowConfidence: false, unfamiliar: false, distance: null };

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

/** mulberry32, so the "photos" and their image ids (hence the audit picks) are the same on every run. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
const seededUuid = (r: () => number) => {
  const hex = Array.from({ length: 32 }, () => Math.floor(r() * 16).toString(16)).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
};

async function seed(site: string, ids: string[]) {
  return createBatch(h.db.db, {
    site,
    images: ids.map((id, index) => ({ id, index, storageKey: `t/${id}`, bytes: 10 })),
  });
}

const get = async <T>(path: string) => {
  const res = await t.app.request(path);
  expect(res.status, path).toBe(200);
  return json<T>(res);
};
const answer = (imageId: string, label: string) =>
  t.app.request(`/v1/results/${imageId}/review`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ label }),
  });

interface QueueItem {
  kind: "audit" | "review";
  imageId: string;
  label?: string;
}
interface Interval {
  estimate: number;
  low: number;
  high: number;
  level: number;
}
interface Stats {
  classes: { label: string; share: number }[];
  quality: {
    method: string;
    audited: number;
    backlog: number;
    needed: number;
    accuracy: Interval | null;
    unflagged: { accuracy: Interval | null; needed: number };
    classes: { label: string; raw: number; share: Interval | null; precision: Interval | null }[];
  };
}

describe("blind audits", () => {
  it("picks by a hash of the image id at AUDIT_RATE, shows audits blind and answers them like reviews", async () => {
    t = await makeApp(h, { model });
    const site = `audit-${randomUUID()}`;
    const ids = Array.from({ length: 40 }, () => randomUUID());
    await seed(site, ids);
    const rows: ResultInput[] = ids.map((imageId, i) => ({
      imageId,
      status: "ok",
      label: "glass",
      confidence: 0.6,
      top: [{ label: "glass", confidence: 0.6 }],
      review: i % 2 === 0 ? flag : noFlag,
      auditRate: 0.5,
    }));
    await recordResults(h.db.db, rows);
    // A replayed job picks nothing new and changes nothing.
    expect((await recordResults(h.db.db, rows)).inserted).toBe(0);
    const picked = ids.filter((id) => auditPicked(id, 0.5));
    expect(picked.length).toBeGreaterThan(5);

    const audits = await get<{ items: QueueItem[]; remaining: number }>(
      `/v1/review?site=${site}&kind=audit&limit=500`,
    );
    expect(audits.items.map((i) => i.imageId).sort()).toEqual([...picked].sort());
    for (const item of audits.items) {
      expect(item.kind).toBe("audit");
      for (const key of ["label", "confidence", "top", "reviewReasons", "novelty"])
        expect(item).not.toHaveProperty(key);
    }
    // Flagged and audited: shown once, as an audit; kind=review keeps the model's answer for the rest.
    const reviews = await get<{ items: QueueItem[] }>(`/v1/review?site=${site}&kind=review&limit=500`);
    const flaggedOnly = ids.filter((id, i) => i % 2 === 0 && !picked.includes(id));
    expect(reviews.items.map((i) => i.imageId).sort()).toEqual([...flaggedOnly].sort());
    expect(reviews.items.every((i) => i.kind === "review" && i.label === "glass")).toBe(true);
    const all = await get<{ remaining: number }>(`/v1/review?site=${site}`);
    expect(all.remaining).toBe(picked.length + flaggedOnly.length);

    const first = picked[0] as string;
    const res = await answer(first, "paper");
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ modelLabel: "glass", label: "paper", changed: true });
    const after = await get<{ items: QueueItem[] }>(`/v1/review?site=${site}&kind=all&limit=500`);
    expect(after.items.some((i) => i.imageId === first)).toBe(false);
    // Reviews of flagged images keep working.
    expect((await answer(flaggedOnly[0] as string, "glass")).status).toBe(200);

    const stats = await get<Stats>(`/v1/stats?site=${site}`);
    expect(stats.quality.audited).toBe(1);
    expect(stats.quality.backlog).toBe(picked.length - 1);
    expect(stats.quality.accuracy).toBeNull();
    expect(stats.quality.needed).toBe(19);
    expect(stats.quality.method).toMatch(/Wilson/);
    expect(stats.quality.classes.find((c) => c.label === "glass")?.raw).toBe(1);
  });

  it("AUDIT_RATE 0 picks nothing", async () => {
    t = await makeApp(h, { model });
    const site = `audit-${randomUUID()}`;
    const ids = Array.from({ length: 10 }, () => randomUUID());
    await seed(site, ids);
    await recordResults(
      h.db.db,
      ids.map((imageId) => ({ imageId, status: "ok", label: "metal", confidence: 0.9, auditRate: 0 })),
    );
    const q = await get<{ remaining: number }>(`/v1/review?site=${site}&kind=audit`);
    expect(q.remaining).toBe(0);
  });

  // The issue's hidden check with recorded results instead of photos: 270 images a model gets about half right,
  // AUDIT_RATE=0.3, every audit answered with the true class through the API, then /v1/stats?site=S. One fixed
  // sample (seed 22): this checks the plumbing end to end; how often such a check passes is measured in
  // packages/stats/test/simulation.test.ts ("the issue's check, 2000 times").
  it("270 images, a model right about half the time, AUDIT_RATE 0.3: the truth is inside the intervals", async () => {
    t = await makeApp(h, { model });
    const site = `audit-check-${randomUUID()}`;
    const r = rng(22);
    const mix = [0.1, 0.14, 0.1, 0.24, 0.3, 0.12];
    const pick = (w: number[]) => {
      let u = r() * w.reduce((a, b) => a + b, 0);
      for (let i = 0; i < w.length; i++) {
        u -= w[i] as number;
        if (u <= 0) return i;
      }
      return w.length - 1;
    };
    const images = Array.from({ length: 270 }, () => {
      const truth = pick(mix);
      // Right about half the time; its wrong labels lean on trash and plastic, as a model far from its training
      // photos does (so the raw shares are off, the issue's premise).
      const right = r() < 0.5;
      const predicted = right
        ? truth
        : pick(CLASSES.map((_, j) => (j === truth ? 0 : j === 5 ? 4 : j === 4 ? 2 : 1)));
      return { id: seededUuid(r), truth, predicted, flagged: r() < (right ? 0.3 : 0.7) };
    });
    // The ids are fixed (so are the picks): an earlier run's batch with them goes first, rollups and all.
    const earlier = await h.db.db.execute<{ batch_id: string }>(
      sql`select distinct batch_id from images where id = any(${`{${images.map((i) => i.id).join(",")}}`}::uuid[])`,
    );
    for (const row of earlier.rows) await deleteBatch(h.db.db, row.batch_id);
    await seed(
      site,
      images.map((i) => i.id),
    );
    await recordResults(
      h.db.db,
      images.map((i) => ({
        imageId: i.id,
        status: "ok",
        label: CLASSES[i.predicted] as string,
        confidence: 0.5,
        review: i.flagged ? flag : noFlag,
        auditRate: 0.3,
      })),
    );
    const truthOf = new Map(images.map((i) => [i.id, CLASSES[i.truth] as string]));
    let cursor = "";
    let answered = 0;
    do {
      const page = await get<{ items: QueueItem[]; nextCursor: string | null }>(
        `/v1/review?site=${site}&kind=audit&limit=50${cursor ? `&cursor=${cursor}` : ""}`,
      );
      for (const item of page.items) {
        expect((await answer(item.imageId, truthOf.get(item.imageId) as string)).status).toBe(200);
        answered += 1;
      }
      cursor = page.nextCursor ?? "";
    } while (cursor);
    expect(answered).toBe(images.filter((i) => auditPicked(i.id, 0.3)).length);

    const stats = await get<Stats>(`/v1/stats?site=${site}`);
    const q = stats.quality;
    const accuracy = images.filter((i) => i.truth === i.predicted).length / images.length;
    const trueShare = CLASSES.map((_, j) => images.filter((i) => i.truth === j).length / images.length);
    expect(q.audited).toBe(answered);
    expect(q.backlog).toBe(0);
    expect(q.accuracy).not.toBeNull();
    expect(q.accuracy?.low).toBeLessThanOrEqual(accuracy);
    expect(q.accuracy?.high).toBeGreaterThanOrEqual(accuracy);
    let inside = 0;
    let corrected = 0;
    let raw = 0;
    let modelRaw = 0;
    CLASSES.forEach((label, j) => {
      const share = q.classes.find((c) => c.label === label)?.share as Interval;
      const truth = trueShare[j] as number;
      if (share.low <= truth && truth <= share.high) inside += 1;
      corrected += Math.abs(share.estimate - truth);
      raw += Math.abs((stats.classes.find((c) => c.label === label)?.share ?? 0) - truth);
      modelRaw += Math.abs((q.classes.find((c) => c.label === label)?.raw ?? 0) - truth);
    });
    console.log(
      `accuracy ${accuracy.toFixed(3)} in [${q.accuracy?.low.toFixed(3)}, ${q.accuracy?.high.toFixed(3)}],` +
        ` ${answered} audits; shares inside ${inside}/6; L1 error corrected ${corrected.toFixed(3)} vs raw ${raw.toFixed(3)}` +
        ` (the raw shares count the answered audits' labels; the model's own labels: ${modelRaw.toFixed(3)})`,
    );
    expect(inside).toBeGreaterThanOrEqual(5);
    expect(corrected).toBeLessThan(raw);
  });
});
