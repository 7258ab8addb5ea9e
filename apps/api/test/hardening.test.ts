/**
 * Issue 22, through app.request(): bounded JSON bodies, forged cursors, Retry-After on every 503, Bull Board
 * while Redis is down, download links for paths no route serves, filenames and CSV cells. The socket-level
 * findings (slow clients, early rejections, memory under a large body) are in slow-clients.test.ts.
 */
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { type AddressInfo, connect, createServer, type Socket } from "node:net";
import { createRedis } from "@garbage/queue";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { toCsv } from "../src/csv";
import { encodeCursor } from "../src/cursor";
import { form, type Harness, json, makeApp, openHarness, png, type TestApp } from "./helpers";
import { bearer, sites, upload } from "./ui-helpers";

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

const big = (bytes: number) => JSON.stringify({ label: "x".repeat(bytes) });

describe("request bodies", () => {
  it("refuses a JSON body over BODY_MAX_BYTES with 413 {code, message, requestId}, declared or chunked", async () => {
    t = await makeApp(h, { config: { maxBodyBytes: 1_000 } });
    const id = randomUUID();
    for (const [method, path] of [
      ["PUT", `/v1/results/${id}/review`],
      ["POST", "/v1/downloads"],
      ["POST", "/v1/models/rollback"],
    ] as const) {
      const declared = await t.app.request(path, {
        method,
        headers: { "content-type": "application/json" },
        body: big(5_000),
      });
      expect(declared.status, path).toBe(413);
      expect(await json(declared)).toMatchObject({
        code: "payload_too_large",
        message: expect.stringContaining("1000 bytes"),
        requestId: expect.any(String),
      });
    }
    // No Content-Length: refused once the limit is passed, without reading the rest.
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 1;
        controller.enqueue(new TextEncoder().encode(`{"label":"${"x".repeat(500)}`));
      },
    });
    const chunked = await t.app.request(`/v1/results/${id}/review`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: endless,
      duplex: "half",
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(pulled).toBeLessThan(10);
    // Under the limit the route itself answers (here: no such result).
    const small = await t.app.request(`/v1/results/${id}/review`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ label: "paper" }),
    });
    expect(small.status).not.toBe(413);
  });

  it("keeps the uploads' own limits: a batch larger than BODY_MAX_BYTES is accepted", async () => {
    t = await makeApp(h, { config: { maxBodyBytes: 100 } });
    const res = await t.app.request("/v1/batches", {
      method: "POST",
      body: form([{ data: await png(1, 2, 3, 64), filename: "a.png" }], { site: `s-${randomUUID()}` }),
    });
    expect(res.status).toBe(202);
  });
});

describe("cursors", () => {
  it("answers 400 for a cursor whose timestamp or id is not real, on /v1/batches and /v1/review", async () => {
    t = await makeApp(h);
    const forged = [
      { at: "2026-13-01 00:00:00+00", id: randomUUID() },
      { at: "2026-02-30 12:00:00+00", id: randomUUID() },
      { at: "2026-01-01 24:00:00+00", id: randomUUID() },
      { at: "2026-01-01 10:00:00+99", id: randomUUID() },
      { at: "2026-01-01 10:00:00+00", id: "00000000-0000-0000-0000-00000000000g" },
    ];
    for (const cursor of forged) {
      const encoded = encodeCursor(cursor) as string;
      for (const path of ["/v1/batches", "/v1/review"]) {
        const res = await t.app.request(`${path}?cursor=${encoded}`);
        expect(res.status, `${path} ${cursor.at}`).toBe(400);
        expect(await json(res)).toMatchObject({ code: "validation_error" });
      }
    }
    const real = encodeCursor({ at: "2026-02-28 23:59:59.123456+00", id: randomUUID() }) as string;
    expect((await t.app.request(`/v1/batches?cursor=${real}`)).status).toBe(200);
  });
});

/** A TCP proxy to the shared Redis that can be cut, as when Redis dies under a running API. */
async function redisProxy() {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(6379, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut() {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

const BOARD = ["/queues/api/queues?activeQueue=x&page=1&jobsPerPage=10", "/queues/api/redis/stats"];

describe("while Redis is down", () => {
  it("every 503 has Retry-After; Bull Board answers 503 in the API's shape, not 500 or never", async () => {
    const dead = createRedis("redis://127.0.0.1:1", { forWorker: false });
    try {
      t = await makeApp(h, { redis: dead });
      const submit = await t.app.request("/v1/batches", {
        method: "POST",
        body: form([{ data: await png(1, 1, 1), filename: "a.png" }], { site: `s-${randomUUID()}` }),
      });
      expect(submit.status).toBe(503);
      expect(await json(submit)).toMatchObject({ code: "queue_unavailable" });
      expect(submit.headers.get("retry-after")).toBe("5");
      const ready = await t.app.request("/readyz");
      expect(ready.status).toBe(503);
      expect(ready.headers.get("retry-after")).toBe("5");
      // Never connected: BullMQ would wait for the connection for ever.
      for (const path of BOARD) {
        const res = await t.app.request(path);
        expect(res.status, path).toBe(503);
        expect(res.headers.get("retry-after")).toBe("5");
        expect(await json(res)).toMatchObject({ code: "queue_unavailable", requestId: expect.any(String) });
      }
    } finally {
      await t?.dispose();
      t = undefined;
      dead.disconnect();
    }
  });

  it("Bull Board answers 503 service_unavailable once a connected Redis goes away", async () => {
    const proxy = await redisProxy();
    const redis = createRedis(proxy.url, { forWorker: false });
    try {
      await once(redis, "ready");
      t = await makeApp(h, { redis });
      expect((await t.app.request(BOARD[0] as string)).status).toBe(200);
      proxy.cut();
      await new Promise((resolve) => setTimeout(resolve, 100));
      for (const path of BOARD) {
        const res = await t.app.request(path);
        expect(res.status, path).toBe(503);
        expect(res.headers.get("retry-after")).toBe("5");
        expect(await json(res)).toMatchObject({ code: "service_unavailable", requestId: expect.any(String) });
      }
    } finally {
      await t?.dispose();
      t = undefined;
      redis.disconnect();
    }
  });
});

describe("download links", () => {
  it("signs no link for results.CSV (no route serves it), even for a batch the key cannot see", async () => {
    const { north, south, apiKeys } = sites();
    t = await makeApp(h, { config: { apiKeys } });
    const theirs = await upload(t, "beta", { site: south }, [[1, 2, 3]]);
    const mine = await upload(t, "alpha", { site: north }, [[1, 2, 3]]);
    for (const batchId of [theirs.batchId, mine.batchId]) {
      const res = await t.app.request("/v1/downloads", {
        method: "POST",
        headers: { ...bearer("alpha"), "content-type": "application/json" },
        body: JSON.stringify({ path: `/v1/batches/${batchId}/results.CSV` }),
      });
      expect(res.status).toBe(400);
    }
  });
});

describe("filenames and CSV cells", () => {
  it("drops directory parts and bidi controls from names, with a warning for each", async () => {
    t = await makeApp(h);
    const data = await png(9, 9, 9);
    const res = await t.app.request("/v1/batches", {
      method: "POST",
      body: form(
        [
          { data, filename: "photos/2026/a.png" },
          { data, filename: "C:\\Users\\me\\b.png" },
          { data, filename: "invoice\u202Egnp.exe" },
          { data, filename: "plain.png" },
        ],
        { site: `s-${randomUUID()}` },
      ),
    });
    expect(res.status).toBe(202);
    const body = await json<{ id: string; warnings: { index: number; code: string }[] }>(res);
    expect(body.warnings.map((w) => [w.index, w.code])).toEqual([
      [0, "filename_path_removed"],
      [1, "filename_path_removed"],
      [2, "filename_bidi_removed"],
    ]);
    const page = await json<{ items: { filename: string }[] }>(
      await t.app.request(`/v1/batches/${body.id}/results`),
    );
    expect(page.items.map((i) => i.filename)).toEqual(["a.png", "b.png", "invoicegnp.exe", "plain.png"]);
  });

  it("neutralises formulas behind leading spaces or tabs and in full-width form", () => {
    const csv = toCsv(
      ["name"],
      [[" =1+1"], ["\t@SUM(A1)"], ["\uFF1DHYPERLINK()"], ["\uFF0B1"], ["\uFF20x"], ["ok"]],
    );
    expect(csv.split("\r\n").slice(1, -1)).toEqual([
      "' =1+1",
      "'\t@SUM(A1)",
      "'\uFF1DHYPERLINK()",
      "'\uFF0B1",
      "'\uFF20x",
      "ok",
    ]);
  });
});
