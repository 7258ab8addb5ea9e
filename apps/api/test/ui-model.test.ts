import { mkdir, mkdtemp, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import sharp from "sharp";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Harness, json, makeApp, openHarness, type TestApp } from "./helpers";
import { bearer, CLASSES, sites, uiApp } from "./ui-helpers";

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

/** A report folder shaped like `garbage eval --report` output (apps/cli/src/report.ts), files only. */
async function writeReportDir(dir: string, accuracy: number, when: Date) {
  await mkdir(path.join(dir, "thumbs"), { recursive: true });
  await writeFile(
    path.join(dir, "metrics.json"),
    JSON.stringify({
      n: 4,
      accuracy,
      macroF1: 0.7,
      classes: ["reddish", "greenish"],
      confusion: [
        [2, 1],
        [0, 1],
      ],
    }),
  );
  await writeFile(
    path.join(dir, "misclassified.json"),
    JSON.stringify([
      { file: "r3.jpg", truth: "reddish", predicted: "greenish", confidence: 0.8, thumbnail: "thumbs/0.jpg" },
    ]),
  );
  const thumb = await sharp({ create: { width: 8, height: 8, channels: 3, background: "#f00" } })
    .jpeg()
    .toBuffer();
  await writeFile(path.join(dir, "thumbs/0.jpg"), thumb);
  await writeFile(path.join(dir, "index.html"), "<p>report</p>");
  await utimes(path.join(dir, "metrics.json"), when, when);
  return thumb;
}

describe("GET /v1/model", () => {
  it("shows the manifest and the newest eval report, and serves the report's files", async () => {
    const root = await mkdtemp(path.join(tmpdir(), "garbage-reports-"));
    await writeReportDir(path.join(root, "old"), 0.5, new Date("2020-01-01T00:00:00Z"));
    const thumb = await writeReportDir(path.join(root, "new"), 0.75, new Date("2021-01-01T00:00:00Z"));
    await writeFile(path.join(root, "secret.json"), "{}");
    await writeFile(path.join(root, "new", ".hidden.json"), "{}");
    await symlink(path.join(root, "secret.json"), path.join(root, "new", "escape.json"));
    const { apiKeys } = sites();
    t = await uiApp(h, { apiKeys, evalReportDir: root });

    const res = await t.app.request("/v1/model", { headers: bearer("alpha") });
    expect(res.status).toBe(200);
    const model = await json<Record<string, unknown>>(res);
    expect(model).toMatchObject({
      name: "ui-tiny",
      version: "ui-1",
      classes: [...CLASSES],
      review: { minConfidence: expect.any(Number), maxDistance: 0.5 },
      metrics: expect.any(Array),
      embedding: true,
      report: {
        generatedAt: "2021-01-01T00:00:00.000Z",
        metrics: { accuracy: 0.75, n: 4 },
        confusion: {
          labels: ["reddish", "greenish"],
          matrix: [
            [2, 1],
            [0, 1],
          ],
        },
        misclassified: [
          {
            file: "r3.jpg",
            truth: "reddish",
            predicted: "greenish",
            thumbnail: "/v1/model/report/thumbs/0.jpg",
          },
        ],
      },
    });
    // The reference embeddings' file is an internal of the model, not something to show.
    expect(JSON.stringify(model.review)).not.toContain("sha256");

    const file = await t.app.request("/v1/model/report/thumbs/0.jpg", { headers: bearer("alpha") });
    expect(file.status).toBe(200);
    expect(file.headers.get("content-type")).toBe("image/jpeg");
    expect(Buffer.from(await file.arrayBuffer())).toEqual(thumb);
    const html = await t.app.request("/v1/model/report/index.html", { headers: bearer("alpha") });
    expect(html.headers.get("content-security-policy")).toMatch(/sandbox/);

    for (const bad of [
      "../secret.json",
      "..%2Fsecret.json",
      "%2e%2e/secret.json",
      "thumbs/../../secret.json",
      ".hidden.json",
      "escape.json",
      "thumbs",
      "nothing.png",
      "metrics.exe",
    ]) {
      const r = await t.app.request(`/v1/model/report/${bad}`, { headers: bearer("alpha") });
      expect(r.status, bad).toBe(404);
    }
    expect((await t.app.request("/v1/model/report/thumbs/0.jpg")).status).toBe(401);
  });

  it("has report null without EVAL_REPORT_DIR and answers 503 without a manifest", async () => {
    t = await uiApp(h);
    expect(await json(await t.app.request("/v1/model"))).toMatchObject({ report: null });
    expect((await t.app.request("/v1/model/report/metrics.json")).status).toBe(404);
    await t.dispose();
    t = await makeApp(h);
    const res = await t.app.request("/v1/model");
    expect(res.status).toBe(503);
    expect(await json(res)).toMatchObject({ code: "model_unavailable" });
  });
});
