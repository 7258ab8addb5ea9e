/** Bull Board at /queues: read-only, behind a key for every site given as HTTP Basic credentials. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Harness, jpeg, makeApp, openHarness, type TestApp } from "./helpers";

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

const basic = (key: string) => ({ Authorization: `Basic ${Buffer.from(`ops:${key}`).toString("base64")}` });
const keys = [
  { key: "every-site", sites: null },
  { key: "north-only", sites: ["north"] },
];

describe("queue view", () => {
  it("asks a browser for Basic credentials and refuses a key limited to some sites", async () => {
    t = await makeApp(h, { config: { apiKeys: keys } });
    const none = await t.app.request("/queues");
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/^Basic /);
    expect((await t.app.request("/queues", { headers: basic("wrong") })).status).toBe(401);
    // A Bearer header is not what this page takes (a browser cannot send one when it opens a page).
    expect((await t.app.request("/queues", { headers: { Authorization: "Bearer every-site" } })).status).toBe(
      401,
    );
    const limited = await t.app.request("/queues", { headers: basic("north-only") });
    expect(limited.status).toBe(403);
    expect(await limited.json()).toMatchObject({ code: "forbidden_site" });
  });

  it("shows the classify queue and its waiting jobs to a key for every site, and changes nothing", async () => {
    t = await makeApp(h, { config: { apiKeys: keys } });
    const page = await t.app.request("/queues", { headers: basic("every-site") });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.headers.get("content-security-policy")).toContain("connect-src 'self'");
    expect(await page.text()).not.toContain("fonts.googleapis.com");

    const form = new FormData();
    form.append("site", "north");
    form.append(
      "images",
      new Blob([new Uint8Array(await jpeg(200, 10, 10))], { type: "image/jpeg" }),
      "a.jpg",
    );
    const submitted = await t.app.request("/v1/batches", {
      method: "POST",
      body: form,
      headers: { Authorization: "Bearer north-only" },
    });
    expect(submitted.status).toBe(202);

    const api = await t.app.request("/queues/api/queues", { headers: basic("every-site") });
    expect(api.status).toBe(200);
    const body = (await api.json()) as { queues: { name: string; counts: Record<string, number> }[] };
    const ours = body.queues.find((q) => q.name === t?.queue.name);
    expect(ours?.counts.waiting).toBe(1);

    const clean = await t.app.request(`/queues/api/queues/${t.queue.name}/clean/waiting`, {
      method: "PUT",
      headers: basic("every-site"),
    });
    expect(clean.status).toBe(405);
    expect(await t.queue.getWaitingCount()).toBe(1);
  });
});
