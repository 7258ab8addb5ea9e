/**
 * The blind audit flow in headless Chromium against the real API, a worker process (AUDIT_RATE=1, so every
 * image is an audit), Postgres and Redis: the review page shows an audit with no trace of the model's answer,
 * Enter (confirm the model's label elsewhere) does nothing on it, a number key answers it, and the statistics
 * page counts the answer in its audit section.
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../worker/test/helpers";
import { CHROMIUM, type Service, startService } from "./harness";

const SHOTS = path.join(REPO_ROOT, "artifacts/screenshots");

interface Result {
  imageId: string;
  status: string;
  label: string | null;
  confidence: number | null;
  review: { label: string } | null;
}

describe.skipIf(!existsSync(CHROMIUM))("blind audits in Chromium", () => {
  let svc: Service;
  let browser: Browser;
  let page: Page;
  let results: Result[] = [];
  let classes: string[] = [];

  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    svc = await startService({ workerEnv: { AUDIT_RATE: "1" } });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
    });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    classes = (await svc.api<{ classes: string[] }>("/v1/me")).classes;
    // Upload through the API like a camera would; the worker audits every image it records.
    const body = new FormData();
    body.append("site", svc.site);
    for (const img of svc.images.slice(0, 3))
      body.append("images", new Blob([new Uint8Array(img.data)], { type: "image/jpeg" }), img.name);
    const res = await fetch(`${svc.url}/v1/batches`, {
      method: "POST",
      headers: { Authorization: `Bearer ${svc.key}` },
      body,
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const deadline = Date.now() + 120_000;
    while (!/^completed/.test((await svc.api<{ status: string }>(`/v1/batches/${id}`)).status)) {
      if (Date.now() > deadline) throw new Error(`batch ${id} did not complete in 2 minutes`);
      await new Promise((r) => setTimeout(r, 250));
    }
    results = (await svc.api<{ items: Result[] }>(`/v1/batches/${id}/results`)).items.filter(
      (r) => r.status === "ok",
    );
    expect(results.length).toBeGreaterThan(0);
  }, 300_000);
  afterAll(async () => {
    await page?.screenshot({ path: path.join(SHOTS, "audit-last.png"), fullPage: true }).catch(() => {});
    await browser?.close();
    await svc?.close();
  });

  it("shows an audit without the model's answer, ignores Enter, and takes the reviewer's own label", async () => {
    await page.goto(svc.url);
    await page.getByLabel("API key").fill(svc.key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Classify" }).waitFor();
    await page.goto(`${svc.url}/#/review`);
    await page.getByLabel("Show").selectOption("audit");
    const item = page.locator('[data-testid="review-item"][data-kind="audit"]');
    await item.waitFor();
    await page.getByTestId("audit-note").waitFor();
    await page.screenshot({ path: path.join(SHOTS, "review-audit.png"), fullPage: true });

    const name = (await item.locator(".filename").textContent()) ?? "";
    const text = (await item.textContent()) ?? "";
    expect(text).not.toMatch(/Model says|\(model\)|top:|\d+\.\d %|similar/i);
    expect(await item.locator(".choices button.primary").count()).toBe(0);
    const shown = results.find((r) => name.includes(r.imageId) || svc.images.some((i) => i.name === name));
    expect(shown).toBeDefined();

    // Enter would confirm the model's label on a flagged image; on an audit there is none to confirm.
    await page.keyboard.press("Enter");
    await page.waitForTimeout(300);
    expect(await page.getByTestId("saved").textContent()).toBe("");

    const remaining = Number(await page.getByTestId("remaining").textContent());
    await page.keyboard.press("2");
    await expect.poll(() => page.getByTestId("saved").textContent()).toContain(`audited as ${classes[1]}`);
    expect(await page.getByTestId("saved").textContent()).not.toMatch(/corrected|confirmed/);
    if (remaining > 1)
      await expect.poll(() => page.getByTestId("remaining").textContent()).toBe(String(remaining - 1));
    const audited = await svc.api<{ items: { imageId: string }[]; remaining: number }>(
      `/v1/review?kind=audit&site=${svc.site}`,
    );
    expect(audited.remaining).toBe(remaining - 1);
  });

  it("counts the answer on the statistics page and says how many audits the estimates still need", async () => {
    await page.goto(`${svc.url}/#/stats`);
    await page.getByRole("heading", { name: "Statistics" }).waitFor();
    const quality = page.getByTestId("stats-quality");
    await quality.waitFor();
    await expect.poll(() => page.getByTestId("quality-audited").textContent()).toBe("1");
    expect(await page.getByTestId("quality-backlog").textContent()).toBe(String(results.length - 1));
    expect(await page.getByTestId("quality-accuracy").textContent()).toBe("not yet");
    expect(await page.getByTestId("quality-note").textContent()).toContain("19 more answered audits");
    expect(await page.getByTestId("quality-classes").getByRole("row").count()).toBeGreaterThan(
      classes.length,
    );
    await page.screenshot({ path: path.join(SHOTS, "stats-quality.png"), fullPage: true });
  });
});
