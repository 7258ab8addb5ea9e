import { createHash, randomUUID } from "node:crypto";
import { createRedis } from "@garbage/queue";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { form, type Harness, jpeg, json, makeApp, noisePng, openHarness, png, type TestApp } from "./helpers";

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

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const post = (app: TestApp["app"], body: FormData | string, headers: Record<string, string> = {}) =>
  app.request("/v1/batches", { method: "POST", body, headers });

async function batchesAtSite(site: string): Promise<number> {
  const res = await h.db.pool.query<{ n: string }>("select count(*) as n from batches where site = $1", [
    site,
  ]);
  return Number(res.rows[0]?.n);
}

describe("POST /v1/batches", () => {
  it("keeps UTF-8 filenames, replaces bytes that are not text, shortens long names and says so", async () => {
    t = await makeApp(h);
    const image = await jpeg(200, 10, 10);
    const boundary = `b${randomUUID().replaceAll("-", "")}`;
    const long = `${"x".repeat(300)}.jpg`;
    // The filename parameters as raw header bytes (a raw control byte there is already a 400 from busboy;
    // the RFC 5987 form percent-encodes one past it).
    const params = [
      Buffer.from('filename="Müll-Flasche ♻.jpg"', "utf8"),
      Buffer.concat([Buffer.from('filename="bad-'), Buffer.from([0xff, 0xfe]), Buffer.from('.jpg"')]),
      Buffer.from(`filename="${long}"`),
      Buffer.from("filename*=UTF-8''nul%00name.jpg"),
    ];
    const body = Buffer.concat([
      ...params.flatMap((param) => [
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="images"; `),
        param,
        Buffer.from("\r\nContent-Type: image/jpeg\r\n\r\n"),
        image,
        Buffer.from("\r\n"),
      ]),
      Buffer.from(`--${boundary}--\r\n`),
    ]);
    const res = await t.app.request("/v1/batches", {
      method: "POST",
      headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
      body,
    });
    expect(res.status, await res.clone().text()).toBe(202);
    const accepted = await json<{ id: string; warnings: { index: number; code: string }[] }>(res);
    expect(accepted.warnings.map((w) => [w.index, w.code])).toEqual([
      [1, "filename_replaced"],
      [2, "filename_shortened"],
      [3, "filename_replaced"],
    ]);
    const { rows } = await h.db.pool.query<{ filename: string }>(
      "select filename from images where batch_id = $1 order by index",
      [accepted.id],
    );
    expect(rows[0]?.filename).toBe("Müll-Flasche ♻.jpg");
    expect(rows[1]?.filename).toMatch(/^bad-\uFFFD+\.jpg$/);
    expect(rows[2]?.filename).toHaveLength(255);
    expect(rows[2]?.filename.endsWith("x.jpg")).toBe(true);
    expect(rows[3]?.filename).toBe("nul\uFFFDname.jpg");
  });

  it("stores every image, creates rows and enqueues ids-only jobs before answering 202", async () => {
    t = await makeApp(h, { config: { chunkSize: 2 } });
    const files = [
      { data: await jpeg(200, 10, 10), filename: "a.jpg" },
      { data: await png(10, 200, 10), filename: "b.png" },
      { data: await jpeg(10, 10, 200), filename: "c.jpg" },
    ];
    const res = await post(
      t.app,
      form(files, { site: "plant-1", line: "L2", camera: "cam-7", capturedAt: "2024-05-06T07:08:09Z" }),
    );
    expect(res.status).toBe(202);
    const body = await json<{ id: string; status: string; total: number }>(res);
    expect(body).toEqual({ id: expect.any(String), status: "queued", total: 3 });

    const { rows } = await h.db.pool.query<{
      id: string;
      filename: string;
      content_type: string;
      bytes: string;
      sha256: string;
      site: string;
      line: string;
      storage_key: string;
      captured_at: Date;
    }>("select * from images where batch_id = $1 order by index", [body.id]);
    expect(rows.map((r) => [r.filename, r.content_type, Number(r.bytes), r.sha256, r.site, r.line])).toEqual(
      files.map((f, i) => [
        f.filename,
        i === 1 ? "image/png" : "image/jpeg",
        f.data.length,
        sha(f.data),
        "plant-1",
        "L2",
      ]),
    );
    expect(rows[0]?.captured_at.toISOString()).toBe("2024-05-06T07:08:09.000Z");
    for (const [i, row] of rows.entries()) {
      expect((await t.store.get(row.storage_key as string)).equals(files[i]?.data as Buffer)).toBe(true);
    }

    const jobs = await t.queue.getJobs(["waiting"]);
    expect(jobs.map((j) => j.id).sort()).toEqual([`${body.id}-0`, `${body.id}-1`]);
    const queued = jobs.flatMap((j) => j.data.images).sort((a, b) => a.key.localeCompare(b.key));
    expect(queued.map((i) => [i.id, i.key])).toEqual(
      rows.map((r) => [r.id, r.storage_key]).sort((a, b) => String(a[1]).localeCompare(String(b[1]))),
    );
    expect(JSON.stringify(jobs.map((j) => j.data)).length).toBeLessThan(1_000);

    const batch = await json(await t.app.request(`/v1/batches/${body.id}`));
    expect(batch).toMatchObject({
      id: body.id,
      status: "queued",
      total: 3,
      processed: 0,
      failed: 0,
      completedAt: null,
    });
  });

  it("accepts non-images but records them as failed without storing or enqueueing them", async () => {
    t = await makeApp(h);
    const res = await post(
      t.app,
      form([
        { data: await png(1, 2, 3), filename: "ok.png" },
        { data: Buffer.from("just some text, not a picture"), filename: "notes.txt" },
      ]),
    );
    expect(res.status).toBe(202);
    const { id } = await json<{ id: string }>(res);
    expect(await t.storedFiles()).toHaveLength(1);
    const jobs = await t.queue.getJobs(["waiting"]);
    expect(jobs.flatMap((j) => j.data.images)).toHaveLength(1);
    const page = await json<{ items: { filename: string; status: string; error: unknown }[] }>(
      await t.app.request(`/v1/batches/${id}/results`),
    );
    expect(page.items.map((i) => [i.filename, i.status])).toEqual([
      ["ok.png", "queued"],
      ["notes.txt", "failed"],
    ]);
    expect(page.items[1]?.error).toMatchObject({ code: "unsupported_format" });
    expect(await json(await t.app.request(`/v1/batches/${id}`))).toMatchObject({ processed: 1, failed: 1 });
  });

  it("returns the first batch for a retried Idempotency-Key without storing the files again", async () => {
    t = await makeApp(h);
    const key = `retry-${randomUUID()}`;
    const files = async () =>
      form([
        { data: await jpeg(50, 60, 70), filename: "x.jpg" },
        { data: await png(9, 9, 9), filename: "y.png" },
      ]);
    const first = await post(t.app, await files(), { "Idempotency-Key": key });
    expect(first.status).toBe(202);
    const firstBody = await json<{ id: string }>(first);
    const stored = await t.storedFiles();

    const second = await post(t.app, await files(), { "Idempotency-Key": key });
    expect(second.status).toBe(202);
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    expect(await json(second)).toEqual(firstBody);
    expect(await t.storedFiles()).toEqual(stored);
    expect(await t.queue.count()).toBe(1);

    // Concurrent submissions under a fresh key: one batch, one copy of the files.
    const key2 = `race-${randomUUID()}`;
    const app = t.app;
    const bodies = await Promise.all(
      [1, 2, 3].map(async () => post(app, await files(), { "Idempotency-Key": key2 })),
    );
    const ids = new Set(await Promise.all(bodies.map(async (r) => (await json<{ id: string }>(r)).id)));
    expect(bodies.map((r) => r.status)).toEqual([202, 202, 202]);
    expect(ids.size).toBe(1);
    expect(await t.storedFiles()).toHaveLength(stored.length + 2);
  });

  it("rejects an invalid Idempotency-Key and bad metadata, keeping nothing", async () => {
    t = await makeApp(h);
    const site = `site-${randomUUID()}`;
    const bad = await post(t.app, form([{ data: await png(1, 1, 1), filename: "a.png" }]), {
      "Idempotency-Key": "has space",
    });
    expect(bad.status).toBe(400);
    expect(await json(bad)).toMatchObject({ code: "validation_error", requestId: expect.any(String) });

    const cases: Record<string, string>[] = [
      { site, capturedAt: "yesterday" },
      { site, colour: "red" },
      { site: `${site}\u0000x` },
      { site, line: "A\nB" },
      { site, camera: "cam\u0007" },
    ];
    for (const fields of cases) {
      const res = await post(t.app, form([{ data: await png(1, 1, 1), filename: "a.png" }], fields));
      expect(res.status).toBe(400);
      expect(await json(res)).toMatchObject({ code: "validation_error" });
    }
    expect(await t.storedFiles()).toEqual([]);
    expect(await batchesAtSite(site)).toBe(0);
  });
});

describe("POST /v1/batches limits", () => {
  it.each([
    ["a file over MAX_FILE_BYTES", { maxFileBytes: 2_000 }, 413, "file_too_large"],
    ["more files than MAX_FILES", { maxFiles: 2 }, 413, "too_many_files"],
    ["a request over the byte limit", { maxRequestBytes: 3_000 }, 413, "request_too_large"],
  ] as const)("refuses %s and leaves no half batch", async (_name, limits, status, code) => {
    t = await makeApp(h, {
      config: { limits: { maxFileBytes: 1_000_000, maxFiles: 100, maxRequestBytes: 10_000_000, ...limits } },
    });
    const site = `site-${randomUUID()}`;
    const small = await png(1, 2, 3);
    const big = await noisePng(64);
    expect(big.length).toBeGreaterThan(4_000);
    const res = await post(
      t.app,
      form(
        [
          { data: small, filename: "1.png" },
          { data: small, filename: "2.png" },
          { data: big, filename: "big.png" },
        ],
        { site },
      ),
    );
    expect(res.status).toBe(status);
    expect(await json(res)).toMatchObject({
      code,
      message: expect.any(String),
      requestId: expect.any(String),
    });
    expect(await t.storedFiles()).toEqual([]);
    expect(await batchesAtSite(site)).toBe(0);
    expect(await t.queue.count()).toBe(0);
  });

  it("refuses a declared Content-Length over the limit before reading", async () => {
    t = await makeApp(h, {
      config: { limits: { maxFileBytes: 1_000, maxFiles: 10, maxRequestBytes: 1_000 } },
    });
    const res = await post(t.app, "x", {
      "Content-Type": "multipart/form-data; boundary=b",
      "Content-Length": "5000",
    });
    expect(res.status).toBe(413);
  });

  it("answers 415 for non-multipart bodies and 400 for uploads without images", async () => {
    t = await makeApp(h);
    const raw = await post(t.app, JSON.stringify({ images: [] }), { "Content-Type": "application/json" });
    expect(raw.status).toBe(415);
    expect(await json(raw)).toMatchObject({ code: "unsupported_media_type" });
    const empty = await post(t.app, form([], { site: "s" }));
    expect(empty.status).toBe(400);
    expect(await json(empty)).toMatchObject({ code: "no_images" });
    const wrong = await post(t.app, form([{ name: "photo", data: await png(1, 1, 1), filename: "a.png" }]));
    expect(wrong.status).toBe(400);
    expect(await json(wrong)).toMatchObject({ code: "unexpected_field" });
    const garbage = await post(t.app, "--b\r\nnot really", {
      "Content-Type": "multipart/form-data; boundary=b",
    });
    expect(garbage.status).toBe(400);
    expect(await t.storedFiles()).toEqual([]);
  });
});

describe("POST /v1/batches when Redis is down", () => {
  it("answers 503 and removes the stored files and the batch", async () => {
    const dead = createRedis("redis://127.0.0.1:1", { forWorker: false });
    try {
      t = await makeApp(h, { redis: dead });
      const site = `site-${randomUUID()}`;
      const res = await post(t.app, form([{ data: await png(1, 1, 1), filename: "a.png" }], { site }));
      expect(res.status).toBe(503);
      expect(await json(res)).toMatchObject({ code: "queue_unavailable" });
      expect(await t.storedFiles()).toEqual([]);
      expect(await batchesAtSite(site)).toBe(0);
    } finally {
      await t?.dispose();
      t = undefined;
      dead.disconnect();
    }
  });
});
