import { createRedis } from "@garbage/queue";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Classifier } from "../src/app";
import { parseApiKeys } from "../src/config";
import { isPagePath } from "../src/routes/web";
import { form, type Harness, json, makeApp, openHarness, png, type TestApp } from "./helpers";

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

const fakeModel: Classifier = {
  manifest: { name: "stub", version: "0" },
  classify: async () => [],
};

describe("API keys", () => {
  it("guards every /v1 route when keys are configured and leaves health open", async () => {
    t = await makeApp(h, { config: { apiKeys: parseApiKeys("alpha,beta") } });
    const routes = [
      ["GET", "/v1/stats"],
      ["GET", "/v1/batches/00000000-0000-4000-8000-000000000000"],
      ["GET", "/v1/batches/00000000-0000-4000-8000-000000000000/results"],
      ["POST", "/v1/batches"],
      ["POST", "/v1/classify"],
    ];
    for (const [method, path] of routes) {
      for (const authorization of [undefined, "Bearer wrong", "alpha", "Basic YWxwaGE6"]) {
        const res = await t.app.request(path as string, {
          method,
          headers: authorization ? { authorization } : {},
        });
        expect(res.status, `${method} ${path} ${authorization}`).toBe(401);
        expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
        expect(await json(res)).toMatchObject({ code: "unauthorized", requestId: expect.any(String) });
      }
    }
    const ok = await t.app.request("/v1/stats", { headers: { authorization: "Bearer beta" } });
    expect(ok.status).toBe(200);
    const upload = await t.app.request("/v1/batches", {
      method: "POST",
      headers: { authorization: "Bearer alpha" },
      body: form([{ data: await png(1, 1, 1), filename: "a.png" }]),
    });
    expect(upload.status).toBe(202);
    expect((await t.app.request("/healthz")).status).toBe(200);
  });

  it("echoes a caller's X-Request-Id in errors", async () => {
    t = await makeApp(h, { config: { apiKeys: parseApiKeys("k") } });
    const res = await t.app.request("/v1/stats", { headers: { "x-request-id": "trace-123" } });
    expect(await json(res)).toMatchObject({ requestId: "trace-123" });
    expect(res.headers.get("x-request-id")).toBe("trace-123");
  });
});

describe("OpenAPI document", () => {
  it("documents every route the app serves", async () => {
    t = await makeApp(h);
    const res = await t.app.request("/openapi.json");
    expect(res.status).toBe(200);
    const doc = await json<{ openapi: string; paths: Record<string, Record<string, unknown>> }>(res);
    expect(doc.openapi).toBe("3.1.0");
    const served = t.app.routes
      .filter((r) => r.method !== "ALL" && r.path !== "/openapi.json" && !isPagePath(r.path))
      // A parameter with a pattern (`:path{.+}`) is documented as plain `{path}`.
      .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)(\{[^}]*\})?/g, "{$1}")}`);
    expect(new Set(served).size).toBeGreaterThanOrEqual(8);
    for (const route of served) {
      const [method, path] = route.split(" ") as [string, string];
      expect(doc.paths[path]?.[method], route).toBeDefined();
    }
    expect(Object.keys(doc.paths).sort()).toEqual([
      "/healthz",
      "/metrics",
      "/readyz",
      "/v1/batches",
      "/v1/batches/{id}",
      "/v1/batches/{id}/results",
      "/v1/batches/{id}/results.csv",
      "/v1/batches/{id}/results.json",
      "/v1/classify",
      "/v1/downloads",
      "/v1/images/{imageId}",
      "/v1/images/{imageId}/thumbnail",
      "/v1/me",
      "/v1/model",
      "/v1/model/report/{path}",
      "/v1/models",
      "/v1/models/rollback",
      "/v1/models/thresholds",
      "/v1/models/{id}",
      "/v1/models/{id}/compare",
      "/v1/models/{id}/promote",
      "/v1/models/{id}/shadow",
      "/v1/results",
      "/v1/results/{imageId}/review",
      "/v1/results/{imageId}/similar",
      "/v1/review",
      "/v1/review/export",
      "/v1/stats",
      "/v1/stats.csv",
    ]);

    // The review fields are documented where clients read them.
    type Obj = { properties: Record<string, Obj>; items: Obj; enum?: string[] };
    const schemas = (doc as unknown as { components: { schemas: Record<string, Obj> } }).components.schemas;
    const props = (o: Obj | undefined) => Object.keys(o?.properties ?? {});
    expect(props(schemas.Classification)).toEqual(expect.arrayContaining(["needsReview", "review"]));
    expect(props(schemas.Review).sort()).toEqual(["distance", "lowConfidence", "unfamiliar"]);
    expect(props(schemas.ResultItem)).toEqual(
      expect.arrayContaining(["needsReview", "reviewReasons", "novelty"]),
    );
    const stats = schemas.Stats;
    expect(props(stats)).toEqual(expect.arrayContaining(["needsReview", "reviewRate"]));
    for (const list of ["classes", "series"]) {
      expect(props(stats?.properties[list]?.items), list).toEqual(
        expect.arrayContaining(["needsReview", "reviewRate"]),
      );
    }
    const results = doc.paths["/v1/batches/{id}/results"]?.get as
      | { parameters: { name: string; schema: Obj }[] }
      | undefined;
    expect(results?.parameters.find((p) => p.name === "needsReview")?.schema.enum).toEqual(["true", "false"]);
  });
});

describe("health", () => {
  it("is ready when database, Redis, storage and model answer", async () => {
    t = await makeApp(h, { classifier: fakeModel, config: { requireModel: true } });
    const res = await t.app.request("/readyz");
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({
      status: "ready",
      checks: { database: "ok", redis: "ok", storage: "ok", model: "ok" },
      model: { name: "stub", version: "0" },
    });
  });

  it("is not ready without a model when one is required", async () => {
    t = await makeApp(h, { config: { requireModel: true } });
    const res = await t.app.request("/readyz");
    expect(res.status).toBe(503);
    expect(await json(res)).toMatchObject({
      status: "not_ready",
      checks: { model: "not_loaded", database: "ok" },
    });
  });

  it("reports an unreachable Redis quickly with 503, while /healthz stays 200", async () => {
    const dead = createRedis("redis://127.0.0.1:1", { forWorker: false });
    try {
      t = await makeApp(h, { redis: dead, classifier: fakeModel });
      const started = Date.now();
      const res = await t.app.request("/readyz");
      expect(Date.now() - started).toBeLessThan(2_500);
      expect(res.status).toBe(503);
      expect(await json(res)).toMatchObject({
        status: "not_ready",
        checks: { redis: "failed", database: "ok" },
      });
      expect((await t.app.request("/healthz")).status).toBe(200);
      // A scrape must still answer during the outage.
      expect((await t.app.request("/metrics")).status).toBe(200);
    } finally {
      await t?.dispose();
      t = undefined;
      dead.disconnect();
    }
  });
});

describe("GET /metrics", () => {
  it("exposes queue depth, uploads, accepted images and request latency from the injected registry", async () => {
    t = await makeApp(h);
    const upload = await t.app.request("/v1/batches", {
      method: "POST",
      body: form([
        { data: await png(1, 1, 1), filename: "a.png" },
        { data: await png(2, 2, 2), filename: "b.png" },
        { data: Buffer.from("nope"), filename: "c.txt" },
      ]),
    });
    expect(upload.status).toBe(202);
    const res = await t.app.request("/metrics");
    expect(res.headers.get("content-type")).toMatch(/text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/garbage_queue_jobs\{state="waiting"\} 1/);
    expect(text).toMatch(/garbage_api_uploads_total\{outcome="created"\} 1/);
    expect(text).toMatch(/garbage_api_images_total\{outcome="queued"\} 2/);
    expect(text).toMatch(/garbage_api_images_total\{outcome="rejected"\} 1/);
    expect(text).toMatch(/garbage_api_batch_size_images_count 1/);
    expect(text).toMatch(
      /garbage_api_request_duration_seconds_count\{method="POST",route="\/v1\/batches",status="202"\} 1/,
    );
  });
});
