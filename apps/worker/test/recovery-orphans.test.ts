/**
 * Issue 11, fault 3: an API process killed mid-upload leaves files in storage that no row points at. The
 * worker's sweep removes them once they are older than ORPHAN_GRACE_MS, and never an upload that a row points
 * at or one younger than the grace period. A real API process (SIGKILLed mid-request) and a real worker
 * process, for both storage backends, on a scratch database.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { listQueuedImages } from "@garbage/db";
import { createStore, type ImageStore, UPLOAD_PREFIX, uploadKey } from "@garbage/storage";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { colourJpeg, randomQueueName, TEST_REDIS_URL, waitFor, writeTinyModel } from "./helpers";
import { createScratchDb, type ScratchDb } from "./own-services";
import { type ServiceProcess, startService, startWorkerProcess, stopProcess } from "./processes";
import { waitForResults } from "./recovery-checks";

const GRACE_MS = 6_000;

let scratch: ScratchDb;
let dir: string;
let model: string;
const running: ServiceProcess[] = [];

beforeAll(async () => {
  [scratch, dir] = await Promise.all([createScratchDb(), mkdtemp(path.join(tmpdir(), "recovery-orphans-"))]);
  model = await writeTinyModel(dir, 8, "tiny");
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => stopProcess(p, "SIGKILL")));
});
afterAll(async () => {
  await scratch?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const boundary = `recon${randomUUID().replaceAll("-", "")}`;
const part = (filename: string, data: Buffer) =>
  Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="images"; filename="${filename}"\r\n` +
        "Content-Type: image/jpeg\r\n\r\n",
    ),
    data,
    Buffer.from("\r\n"),
  ]);

async function post(port: number, body: ReadableStream<Uint8Array> | Buffer) {
  return fetch(`http://127.0.0.1:${port}/v1/batches`, {
    method: "POST",
    body,
    headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
    duplex: "half",
  } as RequestInit);
}

const uploads = async (store: ImageStore) =>
  (await store.list({ prefix: UPLOAD_PREFIX, limit: 1_000 })).map((o) => o.key);

describe.each(["file", "postgres"] as const)("%s store", (kind) => {
  it("removes the uploads of a killed request after the grace period and nothing else", async () => {
    const storageUrl = kind === "file" ? pathToFileURL(path.join(dir, "store")).href : "postgres";
    const store = createStore(storageUrl, { db: scratch.handle.db });
    const queueName = randomQueueName("recovery-orphans");
    const env = { DATABASE_URL: scratch.url, REDIS_URL: TEST_REDIS_URL, STORAGE_URL: storageUrl };
    const api = await startService(
      "api",
      "apps/api/src/index.ts",
      { ...env, QUEUE_NAME: queueName, PORT: "0", REQUIRE_MODEL: "false", MODEL_PATH: "no-model.onnx" },
      "api listening",
    );
    running.push(api);
    const port = api.ready.port as number;
    const jpeg = (i: number) => colourJpeg("red", 32, 24, i);

    // Sweeping every 300 ms from before the crash, so a removal before the grace period could not go unseen.
    running.push(
      await startWorkerProcess("worker", {
        ...env,
        QUEUE_NAME: queueName,
        MODEL_PATH: model,
        WORKER_THREADS: "1",
        METRICS_PORT: "0",
        METRICS_HOST: "127.0.0.1",
        SWEEP_INTERVAL_MS: "300",
        SWEEP_MIN_AGE_MS: "0",
        ORPHAN_GRACE_MS: String(GRACE_MS),
      }),
    );
    // A batch that made it: its uploads have rows and must survive every sweep.
    const done = await post(
      port,
      Buffer.concat([
        part("a.jpg", await jpeg(1)),
        part("b.jpg", await jpeg(2)),
        Buffer.from(`--${boundary}--\r\n`),
      ]),
    );
    expect(done.status).toBe(202);
    const batchId = ((await done.json()) as { id: string }).id;
    const kept = (await listQueuedImages(scratch.handle.db, batchId)).map((i) => i.storageKey);
    await waitForResults(scratch.handle.db, batchId, 2, 20_000);
    const before = new Set(await uploads(store));

    // Three whole files and half of a fourth, then the API dies.
    const big = Buffer.concat([await jpeg(3), Buffer.alloc(200_000, 7)]);
    const head = Buffer.concat([
      part("c.jpg", await jpeg(4)),
      part("d.jpg", await jpeg(5)),
      part("e.jpg", await jpeg(6)),
    ]);
    const half = part("f.jpg", big).subarray(0, 100_000);
    // Never closed: the request is still streaming when the API dies.
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(head);
        controller.enqueue(half);
      },
    });
    const request = post(port, body).catch(() => undefined);
    const orphans = await waitFor(
      "three uploads of the killed request",
      async () => {
        const fresh = (await uploads(store)).filter((k) => !before.has(k));
        return fresh.length >= 3 && fresh;
      },
      20_000,
      20,
    );
    if (kind === "file")
      await waitFor(
        "a half-written upload",
        async () => (await readdir(path.join(dir, "store/.tmp"))).length > 0,
        10_000,
        20,
      );
    await stopProcess(api, "SIGKILL");
    await request;
    const writtenAt = new Map(
      (await store.list({ prefix: UPLOAD_PREFIX, limit: 1_000 })).map((o) => [o.key, o.createdAt.getTime()]),
    );

    // Half a grace period younger than the orphans: it must outlive them.
    await new Promise((r) => setTimeout(r, GRACE_MS / 2));
    const young = uploadKey(randomUUID(), randomUUID());
    await store.put(young, await jpeg(7));

    // Kept by every sweep while young, gone once older than the grace period, never seen gone before.
    await waitFor(
      "the orphans to be removed",
      async () => {
        const left = await uploads(store);
        const removed = orphans.filter((k) => !left.includes(k));
        for (const key of removed) {
          const age = Date.now() - (writtenAt.get(key) as number);
          expect(age, `${key} removed before the grace period was over`).toBeGreaterThanOrEqual(GRACE_MS);
        }
        return removed.length === orphans.length;
      },
      GRACE_MS + 15_000,
      50,
    );
    expect(await uploads(store)).toEqual(expect.arrayContaining([...kept, young]));
    for (const key of kept) expect((await store.get(key)).length).toBeGreaterThan(0);
    // The half-written file was written to until the kill, after the orphans: it comes of age a little later.
    if (kind === "file") {
      await waitFor(
        "the half-written upload to be purged",
        async () => (await readdir(path.join(dir, "store/.tmp"))).length === 0,
        5_000,
        50,
      );
    }
    await store.delete(young);
  }, 60_000);
});
