/**
 * Issue 24, local mode: the agent classifies on the device (a tiny review model standing in for the int8
 * ResNet50) and sends results to POST /v1/results, with the photos of flagged images and of the audit sample.
 * The agent is SIGKILLed once: /v1/stats still counts every photo exactly once. Real API and agent processes;
 * no worker (nothing is queued).
 */
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { DbHandle } from "@garbage/db";
import { afterAll, beforeAll, expect, it } from "vitest";
import { auditSampleWantsImage } from "../src/local";
import { openDb, photo, reviewModel, rowsOfSite, type Shade, sleep, waitFor } from "./fixtures";
import { kill, type Proc, type Stack, startAgent, startStack } from "./processes";

const FILES = 30;
const AUDIT_RATE = 0.3;
let dir: string;
let db: DbHandle;
let stack: Stack | undefined;
let agent: Proc | undefined;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "agent-local-"));
  db = await openDb();
});
afterAll(async () => {
  await kill(agent);
  await stack?.close();
  await db?.close();
  await rm(dir, { recursive: true, force: true });
});

const BASE = Date.parse("2026-11-28T10:00:00Z");
const shades: Shade[] = ["red", "green", "blue", "grey"];

it("results once in /v1/stats, flagged and audit photos uploaded, the rest kept on the device", async () => {
  stack = await startStack(dir, null);
  const model = await reviewModel(path.join(dir, "model"));
  const site = `agent-local-${randomUUID().slice(0, 8)}`;
  const inbox = path.join(dir, "inbox");
  await mkdir(inbox, { recursive: true });
  const args = [
    ...["--watch", inbox, "--site", site, "--line", "L", "--camera", "bin-1", "--api", stack.url, "--local"],
    ...["--model", model, "--audit-rate", String(AUDIT_RATE), "--spool", path.join(dir, "spool")],
    ...[
      "--batch-size",
      "5",
      "--max-wait-ms",
      "200",
      "--settle-ms",
      "200",
      "--scan-ms",
      "100",
      "--metrics-port",
      "0",
    ],
  ];
  agent = await startAgent(args);
  for (let i = 0; i < FILES; i++) {
    const file = path.join(inbox, `l${String(i).padStart(3, "0")}.jpg`);
    await writeFile(file, await photo(shades[i % 4] as Shade, 200 + i));
    const at = new Date(BASE + i * 1000);
    await utimes(file, at, at);
    if (i === 12) {
      await sleep(600);
      await kill(agent);
      agent = await startAgent(args);
    }
    await sleep(60);
  }

  await waitFor(
    "every photo to have a result",
    async () => {
      const r = await rowsOfSite(db, site);
      return r.length >= FILES && r.every((x) => x.status !== null);
    },
    60_000,
  );
  await sleep(1_000);
  const rows = await rowsOfSite(db, site);
  expect(rows).toHaveLength(FILES);
  expect(new Set(rows.map((r) => r.filename)).size).toBe(FILES);
  for (const r of rows) {
    expect(r).toMatchObject({
      site,
      line: "L",
      camera: "bin-1",
      status: "ok",
      model_version: "review@test-1",
    });
    // The API recorded the same audit picks the agent uploaded photos for.
    expect(Boolean(r.audit), `${r.filename} audit`).toBe(auditSampleWantsImage(r.image_id, AUDIT_RATE));
    const wanted = Boolean(r.needs_review) || Boolean(r.audit);
    expect(r.storage_key !== null, `${r.filename} stored`).toBe(wanted);
  }
  expect(rows.some((r) => r.needs_review)).toBe(true);
  expect(rows.some((r) => r.audit && !r.needs_review && r.storage_key !== null)).toBe(true);
  expect(rows.some((r) => r.storage_key === null)).toBe(true);

  // Counted exactly like a worker's results: the statistics equal the rows.
  const from = new Date(BASE - 3_600_000).toISOString();
  const to = new Date(BASE + 3_600_000).toISOString();
  const stats = (await (await fetch(`${stack.url}/v1/stats?site=${site}&from=${from}&to=${to}`)).json()) as {
    total: number;
    needsReview: number;
    classes: { label: string; count: number }[];
  };
  expect(stats.total).toBe(FILES);
  expect(stats.needsReview).toBe(rows.filter((r) => r.needs_review).length);
  const byLabel = new Map<string, number>();
  for (const r of rows) byLabel.set(r.label as string, (byLabel.get(r.label as string) ?? 0) + 1);
  for (const c of stats.classes) expect(c.count, c.label).toBe(byLabel.get(c.label) ?? 0);

  // A flagged photo is there for the review page.
  const flagged = rows.find((r) => r.needs_review);
  const image = await fetch(`${stack.url}/v1/images/${flagged?.image_id}`);
  expect(image.status).toBe(200);
  expect((await image.arrayBuffer()).byteLength).toBeGreaterThan(100);
}, 120_000);
