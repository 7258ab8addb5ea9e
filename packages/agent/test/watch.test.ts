/**
 * Issue 24, folder inbox: photos written into a watched folder (some slowly, some renamed in, some plain) while
 * the API process is killed for a while and the agent is SIGKILLed once; afterwards every photo has exactly one
 * image row and one result, with its site, line, camera and capture time. Real API, worker and agent processes.
 * The 200 files and 20 s outage are scaled to 60 files and an 8 s outage to keep the run under a minute.
 */
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, open, rename, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { DbHandle } from "@garbage/db";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openDb, photo, rowsOfSite, type Shade, sleep, tinyModel, waitFor } from "./fixtures";
import { kill, type Proc, type Stack, startAgent, startStack } from "./processes";

const FILES = 60;
let dir: string;
let db: DbHandle;
let stack: Stack | undefined;
let agent: Proc | undefined;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "agent-watch-"));
  db = await openDb();
});
afterAll(async () => {
  await kill(agent);
  await stack?.close();
  await db?.close();
  await rm(dir, { recursive: true, force: true });
});

const BASE = Date.parse("2026-11-26T08:00:00Z");
const shades: Shade[] = ["red", "green", "blue"];

it("every photo exactly once, with its labels and capture time, through an API outage and an agent SIGKILL", async () => {
  stack = await startStack(dir, await tinyModel(path.join(dir, "model")));
  const site = `agent-watch-${randomUUID().slice(0, 8)}`;
  const inbox = path.join(dir, "inbox");
  // The folder pattern names line and camera; the site comes from the flag.
  await mkdir(path.join(inbox, "L1", "cam-a"), { recursive: true });
  await mkdir(path.join(inbox, "L2", "cam-b"), { recursive: true });
  const spool = path.join(dir, "spool");
  const args = [
    ...["--watch", inbox, "--path-pattern", "{line}/{camera}", "--site", site, "--api", stack.url],
    ...[
      "--spool",
      spool,
      "--batch-size",
      "8",
      "--max-wait-ms",
      "300",
      "--settle-ms",
      "300",
      "--scan-ms",
      "100",
    ],
    ...["--metrics-port", "0"],
  ];
  agent = await startAgent(args);

  const expected = new Map<string, { line: string; camera: string; at: number }>();
  const writer = (async () => {
    for (let i = 0; i < FILES; i++) {
      const [line, camera] = i % 2 === 0 ? ["L1", "cam-a"] : ["L2", "cam-b"];
      const name = `p${String(i).padStart(3, "0")}.jpg`;
      const withExif = i % 5 === 0;
      const at = BASE + i * 1000;
      const exifTime = new Date(at).toISOString().slice(0, 19).replace("T", " ").replace(/-/g, ":");
      const bytes = await photo(shades[i % 3] as Shade, i, withExif ? exifTime : undefined);
      const target = path.join(inbox, line, camera, name);
      expected.set(name, { line, camera, at });
      // With EXIF the capture time is DateTimeOriginal; without, the file's mtime: set it to something else
      // for the EXIF ones, so the test tells the two apart.
      const mtime = new Date(withExif ? at + 3_600_000 : at);
      if (i % 3 === 0) {
        // Slowly: three pieces with pauses longer than --settle-ms; only the JPEG's end says it is complete.
        const fh = await open(target, "w");
        const third = Math.ceil(bytes.length / 3);
        for (let k = 0; k < 3; k++) {
          await fh.write(bytes.subarray(k * third, (k + 1) * third));
          await fh.sync();
          if (k < 2) await sleep(450);
        }
        await fh.close();
        await utimes(target, mtime, mtime);
      } else if (i % 3 === 1) {
        // Renamed in, complete, from a temporary name the agent ignores.
        const tmp = path.join(inbox, line, camera, `.${name}.tmp`);
        await writeFile(tmp, bytes);
        await utimes(tmp, mtime, mtime);
        await rename(tmp, target);
      } else {
        await writeFile(target, bytes);
        await utimes(target, mtime, mtime);
      }
      await sleep(120);
    }
  })();

  // The API goes away for a while (killed, as in a crash), and the agent is killed once in the middle of it.
  await sleep(2_500);
  const api = stack.api;
  await kill(api);
  await sleep(2_000);
  await kill(agent);
  await sleep(1_000);
  agent = await startAgent(args);
  await sleep(5_000);
  await stack.startApi();
  await writer;

  const rows = await waitFor(
    "every photo to have a result",
    async () => {
      const r = await rowsOfSite(db, site);
      return r.length >= FILES && r.every((x) => x.status !== null) ? r : null;
    },
    60_000,
  );
  await sleep(1_000);
  const final = await rowsOfSite(db, site);
  expect(final).toHaveLength(FILES);
  expect(new Set(final.map((r) => r.filename)).size).toBe(FILES);
  for (const r of final) {
    const want = expected.get(r.filename);
    expect(want, r.filename).toBeDefined();
    expect(r).toMatchObject({ site, line: want?.line, camera: want?.camera, status: "ok" });
    expect(new Date(r.captured_at).getTime(), r.filename).toBe(want?.at);
  }
  expect(rows.length).toBe(FILES);
  // What the outage and the kill did: the restarted agent found a backlog in its spool and retried sends.
  const ready = agent.logs.find((l) => l.msg === "agent ready");
  expect(ready?.backlog).toBeGreaterThan(0);
  expect(agent.logs.some((l) => l.msg === "send failed, will retry")).toBe(true);
  // The spool is empty once everything is acknowledged, and the inbox too.
  const metrics = await (
    await fetch(`http://127.0.0.1:${agent.logs.find((l) => l.msg === "agent ready")?.metricsPort}/metrics`)
  ).text();
  expect(metrics).toMatch(/^garbage_agent_backlog_images 0$/m);
}, 120_000);
