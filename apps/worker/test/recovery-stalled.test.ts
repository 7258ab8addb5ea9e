/**
 * Issue 22: a worker killed with SIGKILL mid-batch has its active jobs handed to another worker by BullMQ's
 * stalled check within 15 s, on the default LOCK_DURATION_MS and STALLED_INTERVAL_MS (the old 30 s + 30 s
 * took about a minute). The sweep is off in both workers, so nothing but the stalled check can recover them.
 * A scratch database, the shared Redis (random queue), real worker processes, a deliberately heavy tiny model.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { type ApiHarness, openApi, uniqueSite } from "./api-harness";
import { colourJpeg, TEST_REDIS_URL, waitFor, writeTinyModel } from "./helpers";
import { createScratchDb, type ScratchDb } from "./own-services";
import { type ServiceProcess, startWorkerProcess, stopProcess } from "./processes";
import { expectBatchAccountedFor, resultCount, waitForResults } from "./recovery-checks";

/** From the kill to the stalled check moving the dead worker's jobs back, on default settings. */
const PICKUP_S = 15;
const TOTAL = 96;

let scratch: ScratchDb;
let dir: string;
let model: string;
let api: ApiHarness | undefined;
const running: ServiceProcess[] = [];

beforeAll(async () => {
  scratch = await createScratchDb();
  dir = await mkdtemp(path.join(tmpdir(), "recovery-stalled-"));
  model = await writeTinyModel(dir, 160, "heavy");
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => stopProcess(p, "SIGKILL")));
  await api?.close();
});
afterAll(async () => {
  await scratch?.drop();
  await rm(dir, { recursive: true, force: true });
});

async function spawnWorker(name: string): Promise<ServiceProcess> {
  const worker = await startWorkerProcess(name, {
    DATABASE_URL: scratch.url,
    REDIS_URL: TEST_REDIS_URL,
    STORAGE_URL: (api as ApiHarness).storageUrl,
    QUEUE_NAME: (api as ApiHarness).queueName,
    MODEL_PATH: model,
    WORKER_THREADS: "1",
    METRICS_PORT: "0",
    METRICS_HOST: "127.0.0.1",
    // Only the stalled check may recover the jobs: the sweep would leave active ones alone anyway.
    SWEEP_INTERVAL_MS: "0",
  });
  running.push(worker);
  return worker;
}

it(`hands a SIGKILLed worker's active jobs to another worker within ${PICKUP_S} s by default`, async () => {
  api = await openApi(scratch.handle);
  const db = scratch.handle;
  const victim = await spawnWorker("victim");
  const site = uniqueSite();
  const files = await Promise.all(
    Array.from({ length: TOTAL }, async (_, i) => ({
      filename: `${i}.jpg`,
      data: await colourJpeg((["red", "green", "blue"] as const)[i % 3] ?? "red", 640, 480, i),
    })),
  );
  const { body } = await api.submit(files, { fields: { site } });
  const batchId = body.id;
  await waitFor(
    "the victim's first results",
    async () => (await resultCount(db.db, batchId)) > 0,
    30_000,
    20,
  );

  const active = (await api.queue.getActive()).map((job) => job.id as string);
  await stopProcess(victim, "SIGKILL");
  const killedAt = Date.now();
  expect(active.length, "no job was active at the kill").toBeGreaterThan(0);
  expect(await resultCount(db.db, batchId), "the victim finished first; slow it down").toBeLessThan(TOTAL);

  // Started after the kill: its start-up (a second or two) counts against the limit too.
  const rescuer = await spawnWorker("rescuer");
  const pickedUp = await waitFor(
    "the stalled check to move the dead worker's jobs back",
    async () => {
      const lines = rescuer.logs.filter((l) => l.msg === "stalled job moved back to wait");
      return active.every((id) => lines.some((l) => l.jobId === id)) && lines;
    },
    PICKUP_S * 1_000 + 5_000,
    50,
  );
  const seconds = (Math.max(...pickedUp.map((l) => Date.parse(String(l.time)))) - killedAt) / 1_000;
  console.log(`${active.length} jobs of the killed worker picked up ${seconds.toFixed(1)} s after the kill`);
  expect(seconds).toBeLessThan(PICKUP_S);

  await waitForResults(db.db, batchId, TOTAL, 60_000);
  await expectBatchAccountedFor(db.db, batchId, site);
}, 120_000);
