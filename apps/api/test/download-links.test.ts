import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { envPrincipal } from "../src/auth";
import { signDownloadToken } from "../src/download-token";
import { type Harness, json, openHarness, type TestApp } from "./helpers";
import { bearer, classify, ok, sites, uiApp, upload } from "./ui-helpers";

const SECRET = "download-links-test-secret-0123456789abcdef";
const WINDOW = "from=2011-01-01T00:00:00Z&to=2011-01-02T00:00:00Z&bucket=day";

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

const link = (key: string | null, path: string) =>
  t.app.request("/v1/downloads", {
    method: "POST",
    headers: { ...(key ? bearer(key) : {}), "content-type": "application/json" },
    body: JSON.stringify({ path }),
  });

async function linkUrl(key: string, path: string): Promise<string> {
  const res = await link(key, path);
  expect(res.status, await res.clone().text()).toBe(200);
  const body = await json<{ url: string; expiresAt: string }>(res);
  const ttl = Date.parse(body.expiresAt) - Date.now();
  expect(ttl).toBeGreaterThan(0);
  expect(ttl).toBeLessThanOrEqual(60_000);
  return body.url;
}

const tokenOf = (url: string) => new URL(url, "http://x").searchParams.get("token") as string;

/** Two sites with a batch each, every image reviewed, behind keys alpha (north), beta (south) and root. */
async function twoSites() {
  const { north, south, apiKeys } = sites();
  t = await uiApp(h, { apiKeys, downloadSecret: SECRET });
  const a = await upload(t, "alpha", { site: north }, [
    [200, 10, 10],
    [10, 200, 10],
  ]);
  const b = await upload(t, "beta", { site: south }, [[10, 10, 200]]);
  const all = [...a.imageIds, ...b.imageIds];
  await classify(
    h,
    all.map((id) => ok(id, "reddish", 0.9)),
  );
  for (const [id, key] of [...a.imageIds.map((i) => [i, "alpha"]), [b.imageIds[0], "beta"]]) {
    const res = await t.app.request(`/v1/results/${id}/review`, {
      method: "PUT",
      headers: { ...bearer(key as string), "content-type": "application/json" },
      body: JSON.stringify({ label: "greenish" }),
    });
    expect(res.status).toBe(200);
  }
  return { north, south, a, b };
}

describe("signed download links", () => {
  it("serves the exact download without the Authorization header, as the asking key would see it", async () => {
    const { north, a, b } = await twoSites();
    const csvUrl = await linkUrl("alpha", `/v1/batches/${a.batchId}/results.csv`);
    expect(csvUrl).toMatch(new RegExp(`^/v1/batches/${a.batchId}/results\\.csv\\?token=[\\w.-]+$`));
    const csv = await t.app.request(csvUrl);
    expect(csv.status).toBe(200);
    expect(csv.headers.get("content-disposition")).toMatch(/^attachment;/);
    expect(csv.headers.get("cache-control")).toBe("private, no-store");
    const text = await csv.text();
    for (const id of a.imageIds) expect(text).toContain(id);

    const statsUrl = await linkUrl("alpha", `/v1/stats.csv?${WINDOW}&site=${north}`);
    expect((await t.app.request(statsUrl)).status).toBe(200);

    // The export through a link holds alpha's reviewed images and none of beta's site.
    const tar = Buffer.from(
      await (await t.app.request(await linkUrl("alpha", "/v1/review/export"))).arrayBuffer(),
    ).toString("latin1");
    for (const id of a.imageIds) expect(tar).toContain(`greenish/${id}.png`);
    expect(tar).not.toContain(b.imageIds[0]);
  });

  it("never widens a key's access: foreign batches, sites and non-download paths are refused", async () => {
    const { south, a, b } = await twoSites();
    expect((await link("alpha", `/v1/batches/${b.batchId}/results.json`)).status).toBe(404);
    const foreign = await link("alpha", `/v1/stats.csv?${WINDOW}&site=${south}`);
    expect(foreign.status).toBe(403);
    expect((await json(foreign)).code).toBe("forbidden_site");
    expect((await link(null, `/v1/batches/${a.batchId}/results.csv`)).status).toBe(401);
    // A stats query the download would refuse is refused now, with the same words.
    for (const bad of [
      "bucket=week",
      "from=2011-01-02T00:00:00Z&to=2011-01-01T00:00:00Z",
      "threshold=0.33",
    ]) {
      const res = await link("alpha", `/v1/stats.csv?${bad}`);
      expect(res.status, bad).toBe(400);
      expect((await json(res)).code, bad).toBe("validation_error");
    }
    for (const path of [
      `/v1/batches/${a.batchId}`,
      `/v1/batches/${a.batchId}/results`,
      `/v1/images/${a.imageIds[0]}`,
      "/v1/review/export#x",
      "/v1/review/export?token=abc",
      "/v1/../v1/review/export",
      "//evil.example/v1/review/export",
      "https://evil.example/v1/review/export",
      "/v1/stats.csv?site=a b",
    ]) {
      const res = await link("alpha", path);
      expect(res.status, path).toBe(400);
      expect((await json(res)).code, path).toBe("validation_error");
    }

    // A token for a download is no key for anything else, even a GET the key itself could make.
    const token = tokenOf(await linkUrl("alpha", `/v1/batches/${a.batchId}/results.csv`));
    for (const path of [`/v1/batches/${a.batchId}/results`, `/v1/batches/${a.batchId}`, "/v1/me"]) {
      const res = await t.app.request(`${path}?token=${token}`);
      expect(res.status, path).toBe(401);
      expect((await json(res)).code).toBe("invalid_token");
    }
    // A token signed for alpha, by the server's own secret, still reads only alpha's sites.
    const forged = signDownloadToken(
      SECRET,
      `/v1/batches/${b.batchId}/results.json`,
      envPrincipal({ key: "alpha", sites: [`north-x`] }),
      Date.now() + 30_000,
    );
    expect((await t.app.request(`/v1/batches/${b.batchId}/results.json?token=${forged}`)).status).toBe(404);
  });

  it("is bound to its exact path and query, and refuses a tampered, foreign or expired token", async () => {
    const { north, a, b } = await twoSites();
    const url = await linkUrl("alpha", `/v1/stats.csv?${WINDOW}&site=${north}`);
    const token = tokenOf(url);
    expect((await t.app.request(url)).status).toBe(200);
    // The same link again within its minute works (a retried download).
    expect((await t.app.request(url)).status).toBe(200);

    const refused = async (target: string) => {
      const res = await t.app.request(target);
      expect(res.status, target).toBe(401);
      expect((await json(res)).code, target).toBe("invalid_token");
    };
    await refused(`/v1/stats.csv?${WINDOW}&site=${north}&bucket=hour&token=${token}`);
    await refused(`/v1/stats.csv?${WINDOW}&token=${token}`);
    await refused(`/v1/stats.csv?site=${north}&${WINDOW}&token=${token}`);
    await refused(`/v1/review/export?${WINDOW}&site=${north}&token=${token}`);
    await refused(`${url}&token=${token}`);

    const csv = tokenOf(await linkUrl("alpha", `/v1/batches/${a.batchId}/results.csv`));
    await refused(`/v1/batches/${a.batchId}/results.json?token=${csv}`);
    await refused(`/v1/batches/${b.batchId}/results.csv?token=${csv}`);

    // Tampered: the payload rewritten (every site, another path), the signature altered or cut off.
    const [body, sig] = csv.split(".") as [string, string];
    const payload = JSON.parse(Buffer.from(body, "base64url").toString());
    const widened = Buffer.from(JSON.stringify({ ...payload, s: null })).toString("base64url");
    await refused(`/v1/batches/${a.batchId}/results.csv?token=${widened}.${sig}`);
    const flipped = `${sig.slice(0, -2)}${sig.endsWith("AA") ? "BB" : "AA"}`;
    await refused(`/v1/batches/${a.batchId}/results.csv?token=${body}.${flipped}`);
    await refused(`/v1/batches/${a.batchId}/results.csv?token=${body}`);
    await refused(`/v1/batches/${a.batchId}/results.csv?token=`);
    await refused(`/v1/batches/${a.batchId}/results.csv?token=${csv}&token=${csv}`);

    const principal = envPrincipal({ key: "alpha", sites: [north] });
    const path = `/v1/batches/${a.batchId}/results.csv`;
    const otherSecret = signDownloadToken(`${SECRET}-other`, path, principal, Date.now() + 30_000);
    await refused(`${path}?token=${otherSecret}`);
    const expired = signDownloadToken(SECRET, path, principal, Date.now() - 1);
    await refused(`${path}?token=${expired}`);
    // Signed for an env key that is no longer configured: dead.
    const gone = envPrincipal({ key: "removed", sites: [north] });
    await refused(`${path}?token=${signDownloadToken(SECRET, path, gone, Date.now() + 30_000)}`);
    const fresh = signDownloadToken(SECRET, path, principal, Date.now() + 30_000);
    expect((await t.app.request(`${path}?token=${fresh}`)).status).toBe(200);
  });

  it("is documented in the OpenAPI document", async () => {
    t = await uiApp(h);
    const doc = await json<{ paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }>(
      await t.app.request("/openapi.json"),
    );
    expect(Object.keys(doc.paths["/v1/downloads"]?.post?.responses ?? {})).toEqual(
      expect.arrayContaining(["200", "400", "401", "403", "404", "429"]),
    );
    const full = doc as unknown as {
      paths: Record<string, { get?: { security?: Record<string, string[]>[] } }>;
      components: { securitySchemes: Record<string, { type: string; in?: string; name?: string }> };
    };
    expect(full.components.securitySchemes.downloadToken).toMatchObject({
      type: "apiKey",
      in: "query",
      name: "token",
    });
    for (const path of [
      "/v1/batches/{id}/results.csv",
      "/v1/batches/{id}/results.json",
      "/v1/stats.csv",
      "/v1/review/export",
    ]) {
      expect(full.paths[path]?.get?.security, path).toEqual([{ bearer: [] }, { downloadToken: [] }]);
    }
    expect(full.paths["/v1/stats"]?.get?.security).toEqual([{ bearer: [] }]);
  });
});
