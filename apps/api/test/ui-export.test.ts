import { Readable } from "node:stream";
import tar from "tar-stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Harness, json, openHarness, type TestApp } from "./helpers";
import { bearer, classify, ok, sites, uiApp, upload } from "./ui-helpers";

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

/** Every entry of a tar response: name -> bytes. */
async function untar(res: Response): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on("entry", (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on("data", (c) => chunks.push(c as Buffer));
      stream.on("end", () => {
        files.set(header.name, Buffer.concat(chunks));
        next();
      });
    });
    extract.on("finish", resolve);
    extract.on("error", reject);
  });
  Readable.from(Buffer.from(await res.arrayBuffer())).pipe(extract);
  await done;
  return files;
}

const reviewAs = (imageId: string, key: string, label: string) =>
  t.app.request(`/v1/results/${imageId}/review`, {
    method: "PUT",
    headers: { ...bearer(key), "content-type": "application/json" },
    body: JSON.stringify({ label }),
  });

describe("GET /v1/review/export", () => {
  it("packs every reviewed image the key can see under its reviewed class, bytes as uploaded", async () => {
    const { north, south, apiKeys } = sites();
    t = await uiApp(h, { apiKeys });
    const { imageIds } = await upload(t, "alpha", { site: north }, [
      [200, 10, 10],
      [10, 200, 10],
      [10, 10, 200],
    ]);
    const [confirmed, corrected, unreviewed] = imageIds as [string, string, string];
    const other = (await upload(t, "beta", { site: south }, [[9, 9, 9]])).imageIds[0] as string;
    await classify(h, [
      ok(confirmed, "reddish", 0.9),
      ok(corrected, "reddish", 0.4, true),
      ok(unreviewed, "bluish", 0.9),
      ok(other, "bluish", 0.9),
    ]);
    expect((await reviewAs(confirmed, "alpha", "reddish")).status).toBe(200);
    expect((await reviewAs(corrected, "alpha", "greenish")).status).toBe(200);
    expect((await reviewAs(other, "beta", "bluish")).status).toBe(200);

    const res = await t.app.request("/v1/review/export", { headers: bearer("alpha") });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-tar");
    expect(res.headers.get("content-disposition")).toMatch(/^attachment; filename=".*\.tar"$/);
    const files = await untar(res);
    expect([...files.keys()].sort()).toEqual(
      [`greenish/${corrected}.png`, `reddish/${confirmed}.png`].sort(),
    );
    const original = Buffer.from(
      await (await t.app.request(`/v1/images/${corrected}`, { headers: bearer("alpha") })).arrayBuffer(),
    );
    expect(files.get(`greenish/${corrected}.png`)).toEqual(original);

    // A correction after the export shows in the next one, under the new class.
    await reviewAs(confirmed, "alpha", "bluish");
    const again = await untar(
      await t.app.request(`/v1/review/export?site=${north}`, { headers: bearer("alpha") }),
    );
    expect([...again.keys()].sort()).toEqual([`bluish/${confirmed}.png`, `greenish/${corrected}.png`].sort());

    const beta = await untar(await t.app.request("/v1/review/export", { headers: bearer("beta") }));
    expect([...beta.keys()]).toEqual([`bluish/${other}.png`]);
    const foreign = await untar(
      await t.app.request(`/v1/review/export?site=${north}`, { headers: bearer("beta") }),
    );
    expect(foreign.size).toBe(0);
  });

  it("is listed in the OpenAPI document with every other UI route", async () => {
    t = await uiApp(h);
    const doc = await json<{ paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }>(
      await t.app.request("/openapi.json"),
    );
    for (const [path, method] of [
      ["/v1/me", "get"],
      ["/v1/batches", "get"],
      ["/v1/batches/{id}/results.csv", "get"],
      ["/v1/batches/{id}/results.json", "get"],
      ["/v1/images/{imageId}", "get"],
      ["/v1/images/{imageId}/thumbnail", "get"],
      ["/v1/review", "get"],
      ["/v1/results/{imageId}/review", "put"],
      ["/v1/results/{imageId}/similar", "get"],
      ["/v1/review/export", "get"],
      ["/v1/stats.csv", "get"],
      ["/v1/model", "get"],
      ["/v1/model/report/{path}", "get"],
    ] as const) {
      expect(Object.keys(doc.paths[path]?.[method]?.responses ?? {}), `${method} ${path}`).toEqual(
        expect.arrayContaining(["200", "401", "429"]),
      );
    }
  });
});
