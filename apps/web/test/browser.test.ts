/**
 * The web UI in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core) against the real
 * API, a worker process, Postgres and Redis. The steps run in order on one page and share what they found:
 * sign in, classify one image and a batch, follow the batch, review with the keyboard, see the correction in
 * the statistics, the model page, the API reference, and every page at phone width.
 * Screenshots of every page go to artifacts/screenshots/ (git-ignored).
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../worker/test/helpers";
import { CHROMIUM, DOCS_SCREENSHOTS, MAX_FILE_BYTES, type Service, startService } from "./harness";

const SHOTS = path.join(REPO_ROOT, "artifacts/screenshots");
/** The README's screenshots, written with UI_DOCS_SCREENSHOTS=1. */
const DOCS = ["classify", "stats"];
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
  let classes: string[] = [];
  let batchId = "";
  let results: Result[] = [];
  let flagged: Result[] = [];
  const reviews: { imageId: string; label: string }[] = [];

  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    svc = await startService();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // Chromium's sandbox refuses to start as root (CI containers).
      args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
    });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 }, acceptDownloads: true });
    page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
    // Everything comes from the API's own origin: no CDN, no fonts service, no telemetry.
    page.on("request", (req) => {
      if (!/^(blob:|data:)/.test(req.url()) && !req.url().startsWith(svc.url))
        problems.push(`request to ${req.url()}`);
    });
    page.on("console", (msg) => {
      // Chromium logs every non-2xx fetch; the test asserts on the words the UI shows instead.
      if (msg.type() !== "error" || /Failed to load resource/.test(msg.text())) return;
      // Scalar's zod probes for eval (new Function in a try/catch); the docs CSP refuses it and zod falls back.
      if (msg.location().url.endsWith("/assets/scalar.js") && /script-src/.test(msg.text())) return;
      problems.push(msg.text());
    });
    classes = (await svc.api<{ classes: string[] }>("/v1/me")).classes;
  }, 300_000);
  afterAll(async () => {
    // What the page showed when a step failed.
    await page?.screenshot({ path: path.join(SHOTS, "last.png"), fullPage: true }).catch(() => {});
    await browser?.close();
    await svc?.close();
  });

  const shot = async (name: string) => {
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
    if (DOCS_SCREENSHOTS && DOCS.includes(name))
      await copyFile(
        path.join(SHOTS, `${name}.png`),
        path.join(REPO_ROOT, "docs/screenshots", `${name}.png`),
      );
  };
  const nav = async (label: string) => {
    await page
      .getByRole("navigation", { name: "Main" })
      .getByRole("link", { name: label, exact: true })
      .click();
    await page.getByRole("heading", { level: 1 }).first().waitFor();
  };
  /**
   * Clicks a download button and returns the saved file's text. The browser follows a signed link (no
   * Authorization header, no copy in the page's memory) and streams it to disk.
   */
  const downloaded = async (button: string) => {
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: button }).click(),
    ]);
    expect(download.url()).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/[^#]*[?&]token=[\w.-]+$/);
    expect(await download.failure()).toBeNull();
    return readFile((await download.path()) as string, "utf8");
  };
  const batchResults = async () =>
    (await svc.api<{ items: Result[] }>(`/v1/batches/${batchId}/results`)).items;

  it("refuses a wrong key in words and keeps the right one for the session", async () => {
    await page.goto(svc.url);
    await page.getByLabel("API key").fill("not-a-key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("API key was not accepted");
    await shot("sign-in");
    await page.getByLabel("API key").fill(svc.key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Classify" }).waitFor();
    expect(await page.evaluate(() => Object.values(sessionStorage))).toContain(svc.key);
  });

  it("classifies one image at once, says why a non-image fails, and fills in a batch", async () => {
    const pick = page.getByTestId("pick");
    await pick.setInputFiles([{ name: svc.single.name, mimeType: "image/jpeg", buffer: svc.single.data }]);
    const card = page.getByTestId("result-card").first();
    await card.locator(".class-name").waitFor({ timeout: 60_000 });
    expect(classes).toContain(await card.locator(".class-name").textContent());
    expect(await card.locator(".top li").count()).toBeGreaterThanOrEqual(3);
    expect(await card.locator(".top").textContent()).toMatch(/\d+\.\d %/);

    await pick.setInputFiles([{ name: "notes.jpg", mimeType: "image/jpeg", buffer: Buffer.from("hello") }]);
    await expect
      .poll(() => page.getByTestId("result-card").first().getByRole("alert").textContent())
      .toMatch(/^Not a supported image/);

    const huge = Buffer.alloc(MAX_FILE_BYTES * 2, 0xff);
    await pick.setInputFiles([{ name: "huge.jpg", mimeType: "image/jpeg", buffer: huge }]);
    await expect
      .poll(() => page.getByTestId("result-card").first().getByRole("alert").textContent())
      .toMatch(/^Too large/);

    await page.getByLabel("Site (batches)").fill(svc.site);
    await pick.setInputFiles(
      svc.images.map((i) => ({ name: i.name, mimeType: "image/jpeg", buffer: i.data })),
    );
    await page.locator(".batch-progress").waitFor();
    const n = svc.images.length;
    await expect
      .poll(() => page.locator(".batch-progress").textContent(), { timeout: 120_000, interval: 500 })
      .toContain(`${n} of ${n} done`);
    await expect.poll(() => page.locator(".result .class-name").count()).toBe(n);
    // Filenames are text, never markup.
    expect(await page.locator(".result img[src='x']").count()).toBe(0);
    expect(await page.locator(".result .filename").allTextContents()).toContain(svc.images.at(-1)?.name);
    await shot("classify");
    batchId = (await page.locator(".batch-progress a").getAttribute("href"))?.split("/").pop() as string;
    results = await batchResults();
    flagged = results.filter((r) => r.needsReview);
    expect(await page.locator(".result.needs-review .warning").count()).toBe(flagged.length);
    expect(flagged.length, "the review steps need two uploads that need review").toBeGreaterThanOrEqual(2);
  });

  it("lists the batch and shows its gallery, filters and downloads", async () => {
    await nav("Batches");
    await page.getByTestId("batch-row").first().waitFor();
    expect(await page.getByTestId("batch-row").first().textContent()).toContain("completed");
    await shot("batches");
    // Pages of three instead of 200 (the API answers the smaller limit as asked): the gallery loads page by
    // page with "Load more", in upload order.
    const pages = /\/v1\/batches\/[^/]+\/results\?/;
    await page.route(pages, (route) =>
      route.continue({
        url: route
          .request()
          .url()
          .replace(/([?&]limit=)200\b/, "$13"),
      }),
    );
    await page.getByRole("link", { name: batchId.slice(0, 8) }).click();
    const tiles = page.getByTestId("tile");
    const more = page.getByRole("button", { name: "Load more" });
    await expect.poll(() => tiles.count()).toBe(3);
    for (let shown = 3; shown < results.length; shown += 3) {
      await more.click();
      await expect.poll(() => tiles.count()).toBe(Math.min(shown + 3, results.length));
    }
    await expect.poll(() => more.count()).toBe(0);
    expect(await tiles.locator(".filename").allTextContents()).toEqual(results.map((r) => r.filename));
    await page.unroute(pages);
    await expect.poll(() => page.getByTestId("tile").count()).toBe(results.length);
    await expect
      .poll(() => page.locator(".tile img[src^='blob:']").count(), { timeout: 30_000 })
      .toBe(results.length);
    await shot("batch");
    await page.getByLabel("Needs review").selectOption("true");
    await expect.poll(() => page.getByTestId("tile").count()).toBe(flagged.length);
    await page.getByLabel("Needs review").selectOption("");
    const label = results[0]?.label as string;
    await page.getByLabel("Class").selectOption(label);
    await expect
      .poll(() => page.getByTestId("tile").count())
      .toBe(results.filter((r) => r.label === label).length);
    const json = JSON.parse(await downloaded("Download JSON"));
    expect(JSON.stringify(json)).toContain(results[0]?.imageId);
    const csv = await downloaded("Download CSV");
    for (const r of results) expect(csv).toContain(r.imageId);
  });

  it("corrects one image with a digit key and confirms the next with Enter", async () => {
    await nav("Review");
    await page.getByLabel("Your name (stored with each review)").fill("Erika Muster");
    await page.getByTestId("review-item").waitFor();
    await shot("review");
    const name = await page.locator(".review .filename").textContent();
    const first = flagged.find((r) => r.filename === name) as Result;
    expect(first, `review item ${name} is one of the flagged uploads`).toBeDefined();
    const target = classes.find((c) => c !== first.label) as string;
    await page.locator("h1").click();
    await page.keyboard.press(String(classes.indexOf(target) + 1));
    await expect
      .poll(() => page.getByTestId("saved").textContent())
      .toContain(`corrected ${first.label} → ${target}`);
    const nextName = await page.locator(".review .filename").textContent();
    const second = flagged.find((r) => r.filename === nextName) as Result;
    expect(second?.imageId).not.toBe(first.imageId);
    // The reviewed image is now evidence for the next one: the nearest reviewed images by embedding.
    await expect
      .poll(() => page.getByTestId("similar").locator(".class-name").allTextContents())
      .toContain(target);
    await expect
      .poll(() => page.getByTestId("similar").locator("img[src^='blob:']").count())
      .toBeGreaterThan(0);
    await shot("review-similar");
    await page.keyboard.press("Enter");
    await expect.poll(() => page.getByTestId("saved").textContent()).toContain(`confirmed ${second.label}`);

    reviews.push(
      { imageId: first.imageId, label: target },
      { imageId: second.imageId, label: second.label as string },
    );
    const after = await batchResults();
    const corrected = after.find((r) => r.imageId === first.imageId) as Result;
    expect(corrected).toMatchObject({
      label: first.label,
      effectiveLabel: target,
      review: { label: target },
    });
    expect(corrected.review?.reviewer).toContain("Erika Muster");
    expect(after.find((r) => r.imageId === second.imageId)?.review).toMatchObject({ label: second.label });
  });

  it("counts the correction in the statistics", async () => {
    await nav("Statistics");
    await page.getByLabel("Site").selectOption(svc.site);
    await page.getByRole("button", { name: "Show" }).click();
    await expect.poll(() => page.getByTestId("stats-summary").textContent()).toMatch(/Reviewed\s*2/);
    const summary = await page.getByTestId("stats-summary").textContent();
    expect(summary).toMatch(/Changed by reviewers\s*1/);
    expect(summary).toMatch(/Changed rate\s*50\.0 %/);
    expect(summary).toContain(`Images${results.length}`);
    const expected = new Map<string, number>();
    for (const r of await batchResults()) {
      if (r.status === "ok")
        expected.set(r.effectiveLabel as string, (expected.get(r.effectiveLabel as string) ?? 0) + 1);
    }
    for (const [label, count] of expected) {
      const row = page.getByTestId("stats-classes").getByRole("row").filter({ hasText: label });
      expect(await row.locator("td").first().textContent(), label).toBe(String(count));
    }
    await page.locator(".chart canvas").waitFor();
    await shot("stats");
    const csv = await downloaded("Export CSV");
    expect(csv.split(/\r?\n/)[0]).toBe(
      "bucket,class,count,share,needs_review,reviewed,changed,corrected_share,corrected_low,corrected_high," +
        "precision,precision_low,precision_high,accuracy,accuracy_low,accuracy_high",
    );
  });

  it("shows the model, its eval report, and the API reference", async () => {
    await nav("Model");
    await page.getByTestId("model-facts").waitFor();
    expect(await page.getByTestId("model-facts").textContent()).toContain(classes.join(", "));
    // The report the harness wrote with the CLI: its confusion matrix and the misfiled photo.
    type Report = { confusion: { matrix: number[][] }; misclassified: unknown[] };
    const report = (await svc.api<{ report: Report }>("/v1/model")).report;
    const cells = report.confusion.matrix.flat().map(String);
    expect(await page.getByTestId("confusion").locator("td").allTextContents()).toEqual(cells);
    expect(report.misclassified.length).toBeGreaterThan(0);
    await expect
      .poll(() => page.locator(".misclassified img[src^='blob:']").count())
      .toBe(report.misclassified.length);
    await shot("model");
    // The training-data export holds both reviews under the reviewed label.
    const tar = await downloaded("Download reviewed images (.tar)");
    for (const r of reviews) expect(tar).toContain(`${r.label}/${r.imageId}.`);
    await page.goto(`${svc.url}/docs`);
    await page.getByText("garbage-sort API").first().waitFor({ timeout: 60_000 });
    await shot("docs");
  });

  it("shows the read-only queue view (Bull Board) to a key for every site", async () => {
    const context = await browser.newContext({
      httpCredentials: { username: "ops", password: svc.adminKey },
    });
    const board = await context.newPage();
    board.on("pageerror", (err) => problems.push(`queue view: ${err.message}`));
    board.on("console", (msg) => {
      if (msg.type() === "error") problems.push(`queue view: ${msg.text()}`);
    });
    board.on("request", (req) => {
      if (!req.url().startsWith(svc.url) && !/^(blob:|data:)/.test(req.url()))
        problems.push(`request to ${req.url()}`);
    });
    await board.goto(`${svc.url}/queues`);
    await board.getByText(svc.queueName).first().click({ timeout: 30_000 });
    await board
      .getByText(/completed/i)
      .first()
      .waitFor();
    await board.screenshot({ path: path.join(SHOTS, "queues.png"), fullPage: true });
    await context.close();
  });

  it("fits a phone's width on every page, without errors in the console", async () => {
    for (const [hash, name] of [
      ["#/", "classify"],
      ["#/batches", "batches"],
      [`#/batches/${batchId}`, "batch"],
      ["#/review", "review"],
      ["#/stats", "stats"],
      ["#/model", "model"],
    ]) {
      // The batch page at half a phone's height: its last tiles are then surely far out of view.
      await page.setViewportSize({ width: 390, height: name === "batch" ? 420 : 844 });
      await page.goto(`${svc.url}/${hash}`);
      await page.getByRole("heading", { level: 1 }).first().waitFor();
      await page.waitForLoadState("networkidle");
      if (name === "batch") {
        // Thumbnails are fetched as they come near the viewport: the last tile, far below, waits for a scroll.
        const last = page.getByTestId("tile").last();
        await last.waitFor();
        expect(await last.locator(".img-loading").count(), "last thumbnail before scrolling").toBe(1);
        await last.scrollIntoViewIfNeeded();
        await expect.poll(() => last.locator("img[src^='blob:']").count()).toBe(1);
      }
      await shot(`phone-${name}`);
      expect(await page.evaluate(() => document.documentElement.scrollWidth), name).toBeLessThanOrEqual(390);
    }
    expect(problems).toEqual([]);
  });
});
