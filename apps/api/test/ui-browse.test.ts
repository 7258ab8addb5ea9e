import sharp from "sharp";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Harness, json, openHarness, type TestApp } from "./helpers";
import { bearer, CLASSES, sites, uiApp, upload } from "./ui-helpers";

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

interface Batch {
  id: string;
  site: string | null;
  line: string | null;
  camera: string | null;
}

describe("GET /v1/me", () => {
  it("names the key's sites, the visible sites with batches, and the model's classes", async () => {
    const { north, south, apiKeys } = sites();
    t = await uiApp(h, { apiKeys });
    await upload(t, "alpha", { site: north }, [[200, 10, 10]]);
    await upload(t, "beta", { site: south }, [[10, 10, 200]]);
    const alpha = await json(await t.app.request("/v1/me", { headers: bearer("alpha") }));
    expect(alpha).toEqual({ name: null, sites: [north], visibleSites: [north], classes: [...CLASSES] });
    const root = await json<{ sites: null; visibleSites: string[] }>(
      await t.app.request("/v1/me", { headers: bearer("root") }),
    );
    expect(root.sites).toBeNull();
    expect(root.visibleSites).toEqual(expect.arrayContaining([north, south]));
    expect([...root.visibleSites].sort()).toEqual(root.visibleSites);
    expect((await t.app.request("/v1/me")).status).toBe(401);
  });
});

describe("GET /v1/batches", () => {
  it("lists the key's batches newest first, page by page, and never another site's", async () => {
    const { north, south, apiKeys } = sites();
    t = await uiApp(h, { apiKeys });
    const mine: string[] = [];
    for (let i = 0; i < 5; i++) {
      mine.push((await upload(t, "alpha", { site: north, line: `l${i}`, camera: "c" }, [[9, 9, 9]])).batchId);
    }
    const theirs = (await upload(t, "beta", { site: south }, [[9, 9, 9]])).batchId;

    const seen: Batch[] = [];
    let cursor: string | null = null;
    do {
      const query: string = `/v1/batches?limit=2&site=${north}${cursor ? `&cursor=${cursor}` : ""}`;
      const res = await t.app.request(query, { headers: bearer("alpha") });
      expect(res.status).toBe(200);
      const page = await json<{ items: Batch[]; nextCursor: string | null }>(res);
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen.map((b) => b.id)).toEqual([...mine].reverse());
    expect(seen[0]).toMatchObject({ site: north, line: "l4", camera: "c" });

    const all = await json<{ items: Batch[] }>(
      await t.app.request("/v1/batches?limit=200", { headers: bearer("alpha") }),
    );
    expect(all.items.every((b) => b.site === north)).toBe(true);
    expect(all.items.map((b) => b.id)).not.toContain(theirs);
    const other = await json<{ items: Batch[] }>(
      await t.app.request(`/v1/batches?site=${south}`, { headers: bearer("alpha") }),
    );
    expect(other.items).toEqual([]);
  });

  it("answers 400 for a cursor it did not make and a bad limit", async () => {
    t = await uiApp(h);
    for (const q of ["cursor=bm9wZQ", "cursor=%7B%7D", "limit=0", "limit=201"]) {
      const res = await t.app.request(`/v1/batches?${q}`);
      expect(res.status, q).toBe(400);
      expect(await json(res)).toMatchObject({ code: "validation_error" });
    }
  });
});

describe("GET /v1/images/{id}", () => {
  it("serves the original bytes and a JPEG thumbnail to a key that may see the image, 404 to others", async () => {
    const { north, apiKeys } = sites();
    t = await uiApp(h, { apiKeys });
    const { imageIds } = await upload(t, "alpha", { site: north }, [[200, 10, 10]]);
    const id = imageIds[0] as string;

    const original = await t.app.request(`/v1/images/${id}`, { headers: bearer("alpha") });
    expect(original.status).toBe(200);
    expect(original.headers.get("content-type")).toBe("image/png");
    expect(original.headers.get("cache-control")).toMatch(/^private/);
    const bytes = Buffer.from(await original.arrayBuffer());
    expect((await sharp(bytes).metadata()).width).toBe(32);

    const thumb = await t.app.request(`/v1/images/${id}/thumbnail`, { headers: bearer("alpha") });
    expect(thumb.status).toBe(200);
    expect(thumb.headers.get("content-type")).toBe("image/jpeg");
    const meta = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata();
    expect(meta.format).toBe("jpeg");
    expect(Math.max(meta.width ?? 0, meta.height ?? 0)).toBeLessThanOrEqual(256);

    for (const suffix of ["", "/thumbnail"]) {
      const res = await t.app.request(`/v1/images/${id}${suffix}`, { headers: bearer("beta") });
      expect(res.status, suffix).toBe(404);
      expect(await json(res)).toMatchObject({ code: "not_found" });
    }
    expect((await t.app.request(`/v1/images/${id}`, { headers: bearer("root") })).status).toBe(200);
    expect((await t.app.request("/v1/images/not-a-uuid", { headers: bearer("root") })).status).toBe(400);
  });

  it("shrinks a large image to at most 256 px on its long side", async () => {
    t = await uiApp(h);
    const big = await sharp({ create: { width: 900, height: 300, channels: 3, background: "#808080" } })
      .png()
      .toBuffer();
    const body = new FormData();
    body.append("images", new Blob([new Uint8Array(big)], { type: "image/png" }), "big.png");
    const { id } = await json<{ id: string }>(await t.app.request("/v1/batches", { method: "POST", body }));
    const page = await json<{ items: { imageId: string }[] }>(
      await t.app.request(`/v1/batches/${id}/results`),
    );
    const thumb = await t.app.request(`/v1/images/${page.items[0]?.imageId}/thumbnail`);
    const meta = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata();
    expect([meta.width, meta.height]).toEqual([256, 85]);
  });

  it("answers 422 for a thumbnail of bytes that are not a whole image, 404 for a rejected upload", async () => {
    t = await uiApp(h);
    const good = await sharp({ create: { width: 64, height: 64, channels: 3, background: "#123456" } })
      .png()
      .toBuffer();
    const body = new FormData();
    body.append("images", new Blob([new Uint8Array(good.subarray(0, 40))], { type: "image/png" }), "cut.png");
    body.append(
      "images",
      new Blob([new TextEncoder().encode("plain text")], { type: "text/plain" }),
      "a.txt",
    );
    const { id } = await json<{ id: string }>(await t.app.request("/v1/batches", { method: "POST", body }));
    const page = await json<{ items: { imageId: string }[] }>(
      await t.app.request(`/v1/batches/${id}/results`),
    );
    const [cut, text] = page.items.map((i) => i.imageId);
    expect((await t.app.request(`/v1/images/${cut}`)).status).toBe(200);
    const thumb = await t.app.request(`/v1/images/${cut}/thumbnail`);
    expect(thumb.status).toBe(422);
    expect(await json(thumb)).toMatchObject({ code: "undecodable" });
    for (const suffix of ["", "/thumbnail"]) {
      expect((await t.app.request(`/v1/images/${text}${suffix}`)).status, suffix).toBe(404);
    }
  });
});
