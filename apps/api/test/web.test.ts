/** The web UI's static routes: /, /docs and /assets/* from the built bundle, public, with their headers. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildWeb } from "../../../scripts/build-web.mjs";
import { type Harness, makeApp, openHarness, type TestApp } from "./helpers";

let h: Harness;
let t: TestApp | undefined;
let dir: string;
let webDir: string;

beforeAll(async () => {
  h = await openHarness();
  dir = await mkdtemp(path.join(tmpdir(), "garbage-web-"));
  webDir = path.join(dir, "dist");
  await buildWeb({ outdir: webDir });
}, 120_000);
afterEach(async () => {
  await t?.dispose();
  t = undefined;
});
afterAll(async () => {
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("web UI routes", () => {
  it("serves the app, its assets (gzip when accepted) and the API reference without a key", async () => {
    t = await makeApp(h, { config: { webDir, apiKeys: [{ key: "secret", sites: null }] } });
    const index = await t.app.request("/");
    expect(index.status).toBe(200);
    expect(index.headers.get("content-type")).toMatch(/^text\/html/);
    expect(index.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(index.headers.get("content-security-policy")).not.toMatch(/script-src[^;]*unsafe/);
    const html = await index.text();
    expect(html).toContain('<script type="module" src="/assets/main.js">');

    const js = await t.app.request("/assets/main.js");
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toMatch(/javascript/);
    expect(js.headers.get("cache-control")).toBe("no-cache");
    const zipped = await t.app.request("/assets/main.js", { headers: { "Accept-Encoding": "gzip" } });
    expect(zipped.headers.get("content-encoding")).toBe("gzip");
    expect(Number(zipped.headers.get("content-length"))).toBeLessThan((await js.arrayBuffer()).byteLength);

    const docs = await t.app.request("/docs");
    expect(docs.status).toBe(200);
    expect(docs.headers.get("content-security-policy")).toContain("connect-src 'self'");
    expect(await docs.text()).toContain('src="/assets/scalar.js"');
    expect((await t.app.request("/assets/scalar.js")).status).toBe(200);

    // The key still guards the data.
    expect((await t.app.request("/v1/me")).status).toBe(401);
  });

  it("answers 404 JSON for unknown assets and paths that leave the folder", async () => {
    t = await makeApp(h, { config: { webDir } });
    for (const p of ["/assets/nope.js", "/assets/..%2f..%2fpackage.json", "/assets/%2e%2e/index.html"]) {
      const res = await t.app.request(p);
      expect(res.status, p).toBe(404);
      expect(await res.json()).toMatchObject({ code: "not_found" });
    }
  });

  it("says the UI is not built when its folder has no index.html", async () => {
    t = await makeApp(h, { config: { webDir: path.join(dir, "missing") } });
    const res = await t.app.request("/");
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: "ui_not_built" });
  });
});
