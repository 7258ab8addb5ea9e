/**
 * The web UI in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core) against the real
 * API, a worker process, Postgres and Redis: sign in with a key, classify one image and a batch, follow the
 * batch, review and correct one image with the keyboard, and see the correction in the statistics.
 * Screenshots of every page go to artifacts/screenshots/ (git-ignored).
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../worker/test/helpers";
import { CHROMIUM, type Service, startService } from "./harness";

const SHOTS = path.join(REPO_ROOT, "artifacts/screenshots");
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`browser tests skipped: ${CHROMIUM} is absent (apt-get install chromium)`);

interface Result {
  imageId: string;
  filename: string;
  status: string;
  label: string | null;
  needsReview: boolean | null;
  review: { label: string; reviewer: string | null } | null;
  effectiveLabel: string | null;
}

describe.skipIf(!hasChromium)("web UI in Chromium", () => {
  let svc: Service;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    svc = await startService();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // Chromium's sandbox refuses to start as root (CI containers).
      args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
    });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
    page.on("console", (msg) => {
      // Chromium logs every non-2xx fetch; the test asserts on the words the UI shows instead.
      if (msg.type() === "error" && !/Failed to load resource/.test(msg.text())) problems.push(msg.text());
    });
  }, 300_000);
  afterAll(async () => {
    // What the page showed when a step failed.
    await page?.screenshot({ path: path.join(SHOTS, "last.png"), fullPage: true }).catch(() => {});
    await browser?.close();
    await svc?.close();
  });

  const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  const nav = async (label: string) => {
    await page
      .getByRole("navigation", { name: "Main" })
      .getByRole("link", { name: label, exact: true })
      .click();
    await page.getByRole("heading", { level: 1 }).first().waitFor();
  };

  it("signs in, classifies, follows a batch, reviews, and shows the correction in the statistics", async () => {
    // Sign in: a wrong key is refused in words, the right one is kept for the session.
    await page.goto(svc.url);
    await page.getByLabel("API key").fill("not-a-key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("API key was not accepted");
    await shot("sign-in");
    await page.getByLabel("API key").fill(svc.key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Classify" }).waitFor();
    expect(await page.evaluate(() => Object.values(sessionStorage))).toContain(svc.key);

    // One image: the synchronous answer with its top-3.
    await page
      .getByTestId("pick")
      .setInputFiles([{ name: svc.single.name, mimeType: "image/jpeg", buffer: svc.single.data }]);
    const card = page.getByTestId("result-card").first();
    await card.locator(".class-name").waitFor({ timeout: 60_000 });
    const classes = (await svc.api<{ classes: string[] }>("/v1/me")).classes;
    expect(classes).toContain(await card.locator(".class-name").textContent());
    expect(await card.locator(".top li").count()).toBeGreaterThanOrEqual(3);
    expect(await card.locator(".top").textContent()).toMatch(/\d+\.\d %/);

    // Not an image: the API's 415 in words.
    await page
      .getByTestId("pick")
      .setInputFiles([{ name: "notes.jpg", mimeType: "image/jpeg", buffer: Buffer.from("hello") }]);
    await expect
      .poll(() => page.getByTestId("result-card").first().textContent(), { timeout: 30_000 })
      .toMatch(/Not a supported image|could not|cannot|decode/i);

    // Several images: a batch whose cards fill in as the worker writes results.
    await page.getByLabel("Site (batches)").fill(svc.site);
    await page
      .getByTestId("pick")
      .setInputFiles(svc.images.map((i) => ({ name: i.name, mimeType: "image/jpeg", buffer: i.data })));
    await page.locator(".batch-progress").waitFor();
    await expect
      .poll(() => page.locator(".batch-progress").textContent(), { timeout: 120_000, interval: 500 })
      .toContain(`${svc.images.length} of ${svc.images.length} done`);
    await expect.poll(() => page.locator(".result .class-name").count()).toBe(svc.images.length);
    // Filenames are text, never markup.
    expect(await page.locator(".result img[src='x']").count()).toBe(0);
    expect(await page.locator(".result .filename").allTextContents()).toContain(svc.images.at(-1)?.name);
    await shot("classify");
    const batchId = (await page.locator(".batch-progress a").getAttribute("href"))
      ?.split("/")
      .pop() as string;
    const results = (await svc.api<{ items: Result[] }>(`/v1/batches/${batchId}/results`)).items;
    const flagged = results.filter((r) => r.needsReview);
    expect(await page.locator(".result.needs-review .warning").count()).toBe(flagged.length);

    // Batches: the list and the batch's gallery with its filters.
    await nav("Batches");
    await page.getByTestId("batch-row").first().waitFor();
    expect(await page.getByTestId("batch-row").first().textContent()).toContain("completed");
    await shot("batches");
    await page.getByRole("link", { name: batchId.slice(0, 8) }).click();
    await expect.poll(() => page.getByTestId("tile").count()).toBe(results.length);
    await expect
      .poll(() => page.locator(".tile img[src^='blob:']").count(), { timeout: 30_000 })
      .toBe(results.length);
    await shot("batch");
    await page.getByLabel("Needs review").selectOption("true");
    await expect.poll(() => page.getByTestId("tile").count()).toBe(flagged.length);
    await page.getByLabel("Needs review").selectOption("");

    await reviewAndCheckStats(batchId, results, flagged);
    expect(problems).toEqual([]);
  }, 300_000);

  async function reviewAndCheckStats(batchId: string, results: Result[], flagged: Result[]) {
    expect(flagged.length, "no uploaded image needs review; the review steps need one").toBeGreaterThan(0);
    const me = await svc.api<{ classes: string[] }>("/v1/me");
    await nav("Review");
    await page.getByLabel("Your name (stored with each review)").fill("Erika Muster");
    await page.getByTestId("review-item").waitFor();
    const firstName = await page.locator(".review .filename").textContent();
    const first = flagged.find((r) => r.filename === firstName) as Result;
    expect(first, `review item ${firstName} is one of the flagged uploads`).toBeDefined();
    await shot("review");
    // Correct it with a digit key: the first class that is not the model's label.
    const target = me.classes.find((c) => c !== first.label) as string;
    await page.locator("body").click({ position: { x: 5, y: 5 } });
    await page.keyboard.press(String(me.classes.indexOf(target) + 1));
    await expect
      .poll(() => page.getByTestId("saved").textContent())
      .toContain(`corrected ${first.label} → ${target}`);
    const after = (await svc.api<{ items: Result[] }>(`/v1/batches/${batchId}/results`)).items;
    const reviewed = after.find((r) => r.imageId === first.imageId) as Result;
    expect(reviewed.review).toMatchObject({ label: target });
    expect(reviewed.review?.reviewer).toContain("Erika Muster");
    expect(reviewed.label).toBe(first.label);
    expect(reviewed.effectiveLabel).toBe(target);

    // Statistics count the corrected label.
    await nav("Statistics");
    await page.getByLabel("Site").selectOption(svc.site);
    await page.getByRole("button", { name: "Show" }).click();
    await expect.poll(() => page.getByTestId("stats-summary").textContent()).toMatch(/Reviewed\s*1/);
    const summary = await page.getByTestId("stats-summary").textContent();
    expect(summary).toMatch(/Changed by reviewers\s*1/);
    expect(summary).toContain(`Images${results.length}`);
    const expected = new Map<string, number>();
    for (const r of after)
      if (r.status === "ok")
        expected.set(r.effectiveLabel as string, (expected.get(r.effectiveLabel as string) ?? 0) + 1);
    for (const [label, count] of expected) {
      const row = page.getByTestId("stats-classes").getByRole("row").filter({ hasText: label });
      expect(await row.locator("td").first().textContent(), label).toBe(String(count));
    }
    await page.locator(".chart canvas").waitFor();
    await shot("stats");

    await nav("Model");
    await page.getByTestId("model-facts").waitFor();
    expect(await page.getByTestId("model-facts").textContent()).toContain(me.classes.join(", "));
    // The eval report the harness wrote with the CLI: its confusion matrix and the misfiled photo.
    const report = (
      await svc.api<{ report: { confusion: { matrix: number[][] }; misclassified: unknown[] } }>("/v1/model")
    ).report;
    const cells = report.confusion.matrix.flat();
    expect(await page.getByTestId("confusion").locator("td").allTextContents()).toEqual(cells.map(String));
    expect(report.misclassified.length).toBeGreaterThan(0);
    await expect
      .poll(() => page.locator(".misclassified img[src^='blob:']").count())
      .toBe(report.misclassified.length);
    await shot("model");

    await page.goto(`${svc.url}/docs`);
    await page.getByText("garbage-sort API").first().waitFor({ timeout: 60_000 });
    await shot("docs");
  }
});
