import { randomUUID } from "node:crypto";
import { listApiKeys, revokeApiKey } from "@garbage/db";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createKeyCommand, keysCommand, listKeysCommand, revokeKeyCommand } from "../../cli/src/keys";
import { parseConfig } from "../src/config";
import { DATABASE_URL, form, type Harness, json, makeApp, openHarness, png, type TestApp } from "./helpers";

let h: Harness;
let t: TestApp;
const created: string[] = [];
beforeAll(async () => {
  h = await openHarness();
});
afterEach(async () => {
  await t?.dispose();
});
afterAll(async () => {
  // Any key row in the shared test database closes the open (keyless) API of every other test file.
  await h.db.db.$client.query("delete from api_keys where id = any($1::uuid[])", [created]);
  await h?.close();
});

/** Runs a `garbage keys` subcommand against the test database; returns what it printed to stdout. */
async function keys(command: typeof createKeyCommand, ...args: string[]) {
  const out: string[] = [];
  const code = await command(h.db.db, args, (line) => out.push(line));
  return { code, out };
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe("database API keys (garbage keys)", () => {
  it("authenticates created keys with their sites and stops a revoked key", async () => {
    const site = `db-${randomUUID().slice(0, 8)}`;
    const made = await keys(createKeyCommand, "--name", "tenants test", "--sites", `${site}, ${site}`);
    expect(made.code).toBe(0);
    const key = made.out[0] as string;
    expect(key).toMatch(/^gsk_[A-Za-z0-9_-]{43}$/);
    const row = (await listApiKeys(h.db.db)).find((k) => k.name === "tenants test" && k.sites?.[0] === site);
    expect(row).toMatchObject({ sites: [site], revokedAt: null });
    created.push(row?.id as string);
    const listed = await keys(listKeysCommand);
    expect(listed.out.join("\n")).toContain(`${row?.id}\ttenants test\t${site}`);
    expect(listed.out.join("\n")).not.toContain(key);

    t = await makeApp(h, { config: { apiKeys: [], apiKeyCacheMs: 0 } });
    // With a database key active the API is no longer open.
    expect((await t.app.request("/v1/stats")).status).toBe(401);
    expect((await t.app.request("/v1/stats", { headers: bearer(key) })).status).toBe(200);
    const ok = await t.app.request("/v1/batches", {
      method: "POST",
      headers: bearer(key),
      body: form([{ data: await png(1, 2, 3), filename: "a.png" }], { site }),
    });
    expect(ok.status).toBe(202);
    const other = await t.app.request("/v1/batches", {
      method: "POST",
      headers: bearer(key),
      body: form([{ data: await png(1, 2, 3), filename: "a.png" }], { site: `${site}-other` }),
    });
    expect(other.status).toBe(403);

    expect((await keys(revokeKeyCommand, row?.id as string)).code).toBe(0);
    expect((await keys(revokeKeyCommand, row?.id as string)).code).toBe(1);
    const revoked = await t.app.request("/v1/stats", { headers: bearer(key) });
    expect(revoked.status).toBe(401);
    expect(await json(revoked)).toMatchObject({ code: "unauthorized" });
    // Revoking the last key does not reopen the API.
    expect((await t.app.request("/v1/stats")).status).toBe(401);
  });

  it("stops a download link as soon as its key is revoked, within the link's minute", async () => {
    const made = await keys(createKeyCommand, "--name", "link test");
    const key = made.out[0] as string;
    const row = (await listApiKeys(h.db.db)).find((k) => k.name === "link test" && k.revokedAt === null);
    created.push(row?.id as string);
    // The key cache is long: the link must not lean on it.
    t = await makeApp(h, {
      config: { apiKeys: [], apiKeyCacheMs: 60_000, downloadSecret: "api-keys-test-secret-0123456789abcdef" },
    });
    const asked = await t.app.request("/v1/downloads", {
      method: "POST",
      headers: { ...bearer(key), "content-type": "application/json" },
      body: JSON.stringify({ path: "/v1/stats.csv?from=2011-01-01T00:00:00Z&to=2011-01-02T00:00:00Z" }),
    });
    expect(asked.status, await asked.clone().text()).toBe(200);
    const { url } = await json<{ url: string }>(asked);
    expect((await t.app.request(url)).status).toBe(200);
    await revokeApiKey(h.db.db, row?.id as string);
    const res = await t.app.request(url);
    expect(res.status).toBe(401);
    expect(await json(res)).toMatchObject({
      code: "invalid_token",
      message: expect.stringContaining("revoked"),
    });
  });

  it("stops a revoked key once its cache period has passed", async () => {
    const made = await keys(createKeyCommand, "--name", "cache test");
    const key = made.out[0] as string;
    const row = (await listApiKeys(h.db.db)).find((k) => k.name === "cache test" && k.revokedAt === null);
    created.push(row?.id as string);
    expect(row?.sites).toBeNull();
    t = await makeApp(h, { config: { apiKeys: [], apiKeyCacheMs: 300 } });
    expect((await t.app.request("/v1/stats", { headers: bearer(key) })).status).toBe(200);
    await revokeApiKey(h.db.db, row?.id as string);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await t.app.request("/v1/stats", { headers: bearer(key) })).status).toBe(401);
  });

  it("opens DATABASE_URL itself as `garbage keys` does (migrations included)", async () => {
    expect(await keysCommand(["list"], { DATABASE_URL })).toBe(0);
  });

  it("refuses a create without a name", async () => {
    await expect(keys(createKeyCommand, "--sites", "a")).rejects.toThrow(/--name/);
  });
});

describe("rate limit", () => {
  it("answers 429 rate_limited with Retry-After once a key's bucket is empty, per key", async () => {
    const apiKeys = parseConfig({ DATABASE_URL, API_KEYS: "one,two" }).apiKeys;
    t = await makeApp(h, { config: { apiKeys, rateLimit: { rps: 0.5, burst: 2 } } });
    const stats = (key: string) => t.app.request("/v1/stats", { headers: bearer(key) });
    expect((await stats("one")).status).toBe(200);
    expect((await stats("one")).status).toBe(200);
    const limited = await stats("one");
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("2");
    expect(await json(limited)).toMatchObject({ code: "rate_limited", requestId: expect.any(String) });
    expect((await stats("two")).status).toBe(200);
    // Unauthenticated requests are refused before the limiter and health checks are never limited.
    expect((await t.app.request("/v1/stats")).status).toBe(401);
    expect((await t.app.request("/healthz")).status).toBe(200);
  });
});
