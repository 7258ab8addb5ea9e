import { randomUUID } from "node:crypto";
import { createDb } from "@garbage/db";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { isOutage } from "../src/errors";
import { form, type Harness, json, makeApp, openHarness, png, type TestApp } from "./helpers";

// A database nobody listens on: every query fails with ECONNREFUSED, as during a Postgres restart.
const post = (app: TestApp["app"], body: FormData) => app.request("/v1/batches", { method: "POST", body });

let h: Harness;
let down: Harness;
let t: TestApp | undefined;

beforeAll(async () => {
  h = await openHarness();
  const db = createDb("postgres://postgres@127.0.0.1:1/garbage_down", { max: 1, connectTimeoutMs: 1_000 });
  down = { db, redis: h.redis, close: () => db.close() };
});
afterEach(async () => {
  await t?.dispose();
  t = undefined;
});
afterAll(async () => {
  await down.close();
  await h.close();
});

describe("while Postgres is unreachable", () => {
  it("data routes answer 503 with Retry-After quickly, and an upload keeps no files", async () => {
    t = await makeApp(down);
    const started = performance.now();
    for (const req of [
      t.app.request(`/v1/batches/${randomUUID()}`),
      t.app.request(`/v1/batches/${randomUUID()}/results`),
      t.app.request("/v1/stats"),
      post(t.app, form([{ data: await png(1, 1, 1), filename: "a.png" }], { site: "s" })),
    ]) {
      const res = await req;
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("5");
      expect(await json(res)).toMatchObject({ code: "service_unavailable", requestId: expect.any(String) });
    }
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(await t.storedFiles()).toEqual([]);
    const ready = await t.app.request("/readyz");
    expect(ready.status).toBe(503);
    expect(await json(ready)).toMatchObject({ checks: { database: "failed", redis: "ok" } });
  });

  it("tells an outage from a bug", () => {
    expect(
      isOutage(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" })),
    ).toBe(true);
    expect(
      isOutage(new Error("wrapped", { cause: { code: "57P01", message: "terminating connection" } })),
    ).toBe(true);
    expect(isOutage(new AggregateError([Object.assign(new Error("x"), { code: "ECONNREFUSED" })]))).toBe(
      true,
    );
    expect(isOutage(new Error("Connection terminated unexpectedly"))).toBe(true);
    expect(isOutage(Object.assign(new Error("duplicate key"), { code: "23505" }))).toBe(false);
    expect(isOutage(new TypeError("x is undefined"))).toBe(false);
  });
});
