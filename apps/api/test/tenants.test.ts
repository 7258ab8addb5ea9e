import { randomUUID } from "node:crypto";
import { createBatch, recordResults } from "@garbage/db";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config";
import { DATABASE_URL, form, type Harness, json, makeApp, openHarness, png, type TestApp } from "./helpers";

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

// Fresh site names per run: the test database (and its stats rollup) is shared and never emptied.
const north = `north-${randomUUID().slice(0, 8)}`;
const south = `south-${randomUUID().slice(0, 8)}`;
// Through parseConfig, as in production, so API_KEYS parsing is part of what is tested.
const keys = () =>
  parseConfig({ DATABASE_URL, API_KEYS: `alpha:${north}, beta:${south}|${south}, root` }).apiKeys;
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

async function submit(key: string, site: string | undefined, headers: Record<string, string> = {}) {
  const res = await t.app.request("/v1/batches", {
    method: "POST",
    headers: { ...bearer(key), ...headers },
    body: form([{ data: await png(9, 9, 9), filename: "a.png" }], site ? { site } : {}),
  });
  return { res, body: await json(res) };
}

describe("site-scoped API keys", () => {
  it("parses KEY and KEY:SITE1|SITE2 entries", () => {
    expect(keys()).toEqual([
      { key: "alpha", sites: [north] },
      { key: "beta", sites: [south] },
      { key: "root", sites: null },
    ]);
  });

  it("hides another site's batches and results (404) and shows them to an all-sites key", async () => {
    t = await makeApp(h, { config: { apiKeys: keys() } });
    const a = await submit("alpha", north);
    const b = await submit("beta", south);
    expect([a.res.status, b.res.status]).toEqual([202, 202]);
    for (const [key, own, other] of [
      ["alpha", a.body.id, b.body.id],
      ["beta", b.body.id, a.body.id],
    ] as const) {
      for (const suffix of ["", "/results"]) {
        const mine = await t.app.request(`/v1/batches/${own}${suffix}`, { headers: bearer(key) });
        expect(mine.status, `${key} own${suffix}`).toBe(200);
        const theirs = await t.app.request(`/v1/batches/${other}${suffix}`, { headers: bearer(key) });
        expect(theirs.status, `${key} other${suffix}`).toBe(404);
        expect(await json(theirs)).toMatchObject({ code: "not_found" });
      }
    }
    for (const id of [a.body.id, b.body.id]) {
      expect((await t.app.request(`/v1/batches/${id}/results`, { headers: bearer("root") })).status).toBe(
        200,
      );
    }
  });

  it("refuses submissions to a site the key lacks (403) and keeps nothing", async () => {
    t = await makeApp(h, { config: { apiKeys: keys() } });
    for (const site of [south, undefined]) {
      const { res, body } = await submit("alpha", site);
      expect(res.status, String(site)).toBe(403);
      expect(body).toMatchObject({ code: "forbidden_site", requestId: expect.any(String) });
    }
    expect(await t.storedFiles()).toEqual([]);
    expect((await submit("root", undefined)).res.status).toBe(202);
  });

  it("filters /v1/stats to the key's sites and refuses a filter on another site", async () => {
    t = await makeApp(h, { config: { apiKeys: keys() } });
    const capturedAt = new Date("2003-03-03T03:03:00Z");
    for (const [site, n] of [
      [north, 2],
      [south, 3],
    ] as const) {
      const images = Array.from({ length: n }, (_, index) => ({
        index,
        storageKey: `t/${randomUUID()}`,
        bytes: 1,
      }));
      const created = await createBatch(h.db.db, { site, capturedAt, images });
      await recordResults(
        h.db.db,
        created.images.map((i) => ({ imageId: i.id, status: "ok" as const, label: site, confidence: 0.9 })),
      );
    }
    const window = "from=2003-03-03T00:00:00Z&to=2003-03-04T00:00:00Z&bucket=day";
    const stats = async (key: string, extra = "") =>
      t.app.request(`/v1/stats?${window}${extra}`, { headers: bearer(key) });
    const labels = async (res: Response) =>
      (await json<{ classes: { label: string; count: number }[] }>(res)).classes
        .filter((c) => c.label === north || c.label === south)
        .map((c) => [c.label, c.count]);

    expect(await labels(await stats("alpha"))).toEqual([[north, 2]]);
    expect(await labels(await stats("beta"))).toEqual([[south, 3]]);
    expect(await labels(await stats("alpha", `&site=${north}`))).toEqual([[north, 2]]);
    expect(await labels(await stats("root"))).toEqual([
      [south, 3],
      [north, 2],
    ]);
    const forbidden = await stats("alpha", `&site=${south}`);
    expect(forbidden.status).toBe(403);
    expect(await json(forbidden)).toMatchObject({ code: "forbidden_site" });
  });
});

describe("idempotency keys per API key", () => {
  it("gives each API key its own batch for the same Idempotency-Key", async () => {
    t = await makeApp(h, { config: { apiKeys: parseConfig({ DATABASE_URL, API_KEYS: "one,two" }).apiKeys } });
    const headers = { "idempotency-key": `tenants-${randomUUID()}` };
    const one = await submit("one", north, headers);
    const two = await submit("two", north, headers);
    expect([one.res.status, two.res.status]).toEqual([202, 202]);
    expect(two.body.id).not.toBe(one.body.id);
    expect(two.res.headers.get("idempotent-replayed")).toBeNull();
    const again = await submit("two", north, headers);
    expect(again.body.id).toBe(two.body.id);
    expect(again.res.headers.get("idempotent-replayed")).toBe("true");
  });
});

describe("OpenAPI document", () => {
  it("declares 403 and 429 where the routes answer them", async () => {
    t = await makeApp(h);
    const doc = await json<{ paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }>(
      await t.app.request("/openapi.json"),
    );
    const codes = (path: string, method: string) => Object.keys(doc.paths[path]?.[method]?.responses ?? {});
    expect(codes("/v1/batches", "post")).toEqual(expect.arrayContaining(["401", "403", "429"]));
    expect(codes("/v1/stats", "get")).toEqual(expect.arrayContaining(["401", "403", "429"]));
    for (const [path, method] of [
      ["/v1/batches/{id}", "get"],
      ["/v1/batches/{id}/results", "get"],
      ["/v1/classify", "post"],
    ] as const) {
      expect(codes(path, method)).toEqual(expect.arrayContaining(["401", "429"]));
    }
  });
});
