import { randomUUID } from "node:crypto";
import { createDb } from "@garbage/db";
import { captureLogger } from "@garbage/log";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { form, type Harness, json, makeApp, openHarness, png, type TestApp } from "./helpers";

const KEY = `secret-${randomUUID()}`;
const auth = { Authorization: `Bearer ${KEY}` };

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
  await h.close();
});

const requestLines = (lines: ReturnType<typeof captureLogger>["lines"]) =>
  lines.filter((l) => l.msg === "request");

it("logs one line per request with the request id of the response, the route and the principal, never the key", async () => {
  const { log, lines } = captureLogger("api");
  t = await makeApp(h, { logger: log, config: { apiKeys: [{ key: KEY, sites: null }] } });

  const missing = await t.app.request(`/v1/batches/${randomUUID()}`, { headers: auth });
  expect(missing.status).toBe(404);
  const body = await json<{ requestId: string }>(missing);
  const header = missing.headers.get("x-request-id");
  expect(header).toBeTruthy();
  expect(body.requestId).toBe(header);

  const submitted = await t.app.request("/v1/batches", {
    method: "POST",
    headers: auth,
    body: form([{ data: await png(200, 10, 10), filename: "a.png", type: "image/png" }], {
      site: "log-test",
    }),
  });
  expect(submitted.status).toBe(202);

  const unauthenticated = await t.app.request("/v1/stats");
  expect(unauthenticated.status).toBe(401);

  const logged = requestLines(lines);
  expect(logged).toHaveLength(3);
  expect(logged[0]).toMatchObject({
    level: "info",
    service: "api",
    requestId: header,
    method: "GET",
    route: "/v1/batches/:id",
    status: 404,
    principal: expect.stringMatching(/^env:/),
  });
  expect(logged[0]?.durationMs).toEqual(expect.any(Number));
  expect(logged[1]).toMatchObject({
    requestId: submitted.headers.get("x-request-id"),
    method: "POST",
    route: "/v1/batches",
    status: 202,
    principal: logged[0]?.principal,
  });
  expect(logged[2]).toMatchObject({
    requestId: unauthenticated.headers.get("x-request-id"),
    status: 401,
  });
  expect(logged[2]).not.toHaveProperty("principal");
  expect(JSON.stringify(lines)).not.toContain(KEY);
});

it("logs a server error with its stack under the request id the client got", async () => {
  // A database that does not exist: a real Postgres error that is no outage, so a 500 internal_error.
  const url = new URL(process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/garbage_test");
  url.pathname = `/no_such_db_${randomUUID().slice(0, 8)}`;
  const broken = createDb(url.href, { max: 1 });
  const { log, lines } = captureLogger("api");
  try {
    t = await makeApp({ ...h, db: broken }, { logger: log });
    const res = await t.app.request(`/v1/batches/${randomUUID()}`);
    expect(res.status).toBe(500);
    const body = await json<{ code: string; requestId: string }>(res);
    expect(body.code).toBe("internal_error");
    expect(body.requestId).toBe(res.headers.get("x-request-id"));

    const error = lines.find((l) => l.level === "error");
    expect(error).toMatchObject({ msg: "unhandled error", requestId: body.requestId });
    expect((error?.err as { stack?: string } | undefined)?.stack).toMatch(/does not exist/);
    expect(requestLines(lines)).toMatchObject([{ requestId: body.requestId, status: 500 }]);
  } finally {
    await broken.close();
  }
});
