#!/usr/bin/env node
// The client side of `npm run test:compose` (run.sh starts the stack): submits one batch of real photos
// through the API of the running compose stack and checks what comes back, as a user would: every image
// exactly once, the labels right (TrashNet val: at least MIN_ACCURACY), the corrupt file failed, the batch
// counters and /v1/stats equal to the results, and both workers' metrics adding up. Exits 1 on any mismatch.
//
// Environment (set by run.sh): API_URL, API_KEY, METRICS_URLS (comma-separated worker metrics bases),
// IMAGES_PER_CLASS, DATASET (a <class>/<image> folder; missing: generated images), BATCH_TIMEOUT_S.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";

const env = process.env;
const API = env.API_URL ?? "http://127.0.0.1:8450";
const KEY = env.API_KEY ?? "";
const METRICS = (env.METRICS_URLS ?? "").split(",").filter(Boolean);
const PER_CLASS = Number(env.IMAGES_PER_CLASS ?? 8);
const TIMEOUT_MS = Number(env.BATCH_TIMEOUT_S ?? 300) * 1000;
const MIN_ACCURACY = 0.8;
const CLASSES = ["cardboard", "glass", "metal", "paper", "plastic", "trash"];

const failures = [];
function check(ok, what) {
  console.log(`  ${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
}

async function call(method, route, { body, auth = true } = {}) {
  const headers = auth && KEY ? { authorization: `Bearer ${KEY}` } : {};
  const res = await fetch(`${API}${route}`, { method, body, headers, signal: AbortSignal.timeout(60_000) });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

async function get(route) {
  const res = await call("GET", route);
  if (res.status !== 200) throw new Error(`GET ${route}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
  return res.json;
}

/** `perClass` photos of each class from DATASET in name order (deterministic), or generated ones. */
async function loadImages(dataset, perClass) {
  if (dataset && existsSync(dataset)) {
    const files = [];
    for (const label of CLASSES) {
      const dir = path.join(dataset, label);
      const names = readdirSync(dir)
        .filter((n) => /\.jpe?g$/i.test(n))
        .sort()
        .slice(0, perClass);
      for (const name of names) files.push({ name, label, data: readFileSync(path.join(dir, name)) });
    }
    return { files, source: dataset };
  }
  // No dataset: plain generated photos (sharp from the repo's node_modules); labels cannot be checked.
  const { default: sharp } = await import("sharp");
  const files = [];
  for (let i = 0; i < perClass * CLASSES.length; i++) {
    const background = { r: (i * 53) % 256, g: (i * 97) % 256, b: (i * 29) % 256 };
    const data = await sharp({ create: { width: 320, height: 240, channels: 3, background } })
      .jpeg()
      .toBuffer();
    files.push({ name: `generated-${i}.jpg`, label: undefined, data });
  }
  return { files, source: "generated images (no dataset found)" };
}

async function main() {
  const { files, source } = await loadImages(env.DATASET, PER_CLASS);
  // One file that is not an image: it must fail alone, with a result, not stall the batch.
  const first = files[0]?.data;
  if (!first) throw new Error("no images to submit");
  const broken = { name: "broken.jpg", label: undefined, data: first.subarray(0, 600) };
  const upload = [...files, broken];
  const site = `compose-test-${Date.now()}`;
  console.log(`submitting ${upload.length} images (${source}) as site ${site} to ${API}`);

  check((await call("GET", "/healthz", { auth: false })).status === 200, "GET /healthz is 200");
  check((await call("GET", "/readyz", { auth: false })).status === 200, "GET /readyz is 200");
  if (KEY) {
    const anonymous = await call("GET", "/v1/stats", { auth: false });
    check(anonymous.status === 401, `GET /v1/stats without the API key is 401 (got ${anonymous.status})`);
  }

  const form = new FormData();
  form.set("site", site);
  form.set("line", "compose");
  for (const f of upload) form.append("images", new Blob([f.data], { type: "image/jpeg" }), f.name);
  const started = Date.now();
  const submitted = await call("POST", "/v1/batches", { body: form });
  if (submitted.status !== 202)
    throw new Error(`POST /v1/batches: HTTP ${submitted.status} ${submitted.text}`);
  const batchId = submitted.json.id;
  check(submitted.json.total === upload.length, `202 with total ${submitted.json.total} = ${upload.length}`);

  let batch;
  for (;;) {
    batch = await get(`/v1/batches/${batchId}`);
    if (batch.status.startsWith("completed")) break;
    if (Date.now() - started > TIMEOUT_MS)
      throw new Error(`batch still ${batch.status} after ${TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
  const seconds = (Date.now() - started) / 1000;
  console.log(
    `batch ${batchId} ${batch.status} in ${seconds.toFixed(1)} s (${(upload.length / seconds).toFixed(1)} images/s)`,
  );
  check(
    batch.processed === upload.length && batch.failed === 1 && batch.status === "completed_with_errors",
    `batch counters: processed ${batch.processed}/${upload.length}, failed ${batch.failed} (expected 1)`,
  );

  const items = [];
  let cursor = null;
  do {
    const page = await get(`/v1/batches/${batchId}/results?limit=1000${cursor ? `&cursor=${cursor}` : ""}`);
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  check(items.length === upload.length, `results list every image once (${items.length})`);
  check(new Set(items.map((i) => i.imageId)).size === items.length, "no image listed twice");
  const byName = new Map(items.map((i) => [i.filename, i]));
  const brokenResult = byName.get("broken.jpg");
  check(brokenResult?.status === "failed", `broken.jpg failed (${brokenResult?.status})`);
  const ok = items.filter((i) => i.status === "ok");
  check(ok.length === files.length, `every photo classified (${ok.length}/${files.length})`);
  check(
    ok.every((i) => CLASSES.includes(i.label) && i.confidence > 0 && i.confidence <= 1),
    "labels and confidences are valid",
  );
  if (files.every((f) => f.label)) {
    const right = files.filter((f) => byName.get(f.name)?.label === f.label).length;
    const accuracy = right / files.length;
    check(
      accuracy >= MIN_ACCURACY,
      `accuracy ${(accuracy * 100).toFixed(1)} % (${right}/${files.length}) >= ${MIN_ACCURACY * 100} %`,
    );
  }

  const from = new Date(started - 3_600_000).toISOString();
  const to = new Date(Date.now() + 3_600_000).toISOString();
  const stats = await get(`/v1/stats?site=${site}&from=${from}&to=${to}&bucket=hour`);
  const expected = {};
  for (const i of ok)
    expected[i.label] = [
      (expected[i.label]?.[0] ?? 0) + 1,
      (expected[i.label]?.[1] ?? 0) + (i.needsReview ? 1 : 0),
    ];
  const served = Object.fromEntries(stats.classes.map((c) => [c.label, [c.count, c.needsReview]]));
  check(
    stats.total === upload.length && stats.failed === 1,
    `/v1/stats total ${stats.total}, failed ${stats.failed}`,
  );
  check(
    JSON.stringify(sorted(served)) === JSON.stringify(sorted(expected)),
    `/v1/stats per class = results ${JSON.stringify(sorted(served))}`,
  );
  check(
    stats.needsReview === ok.filter((i) => i.needsReview).length,
    `/v1/stats needsReview ${stats.needsReview}`,
  );

  // Each worker's own count, from its metrics port: together they processed every image (at least once;
  // a job retried after a stall may count twice here, never in the results above).
  const perWorker = [];
  for (const base of METRICS) {
    const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    perWorker.push(sumMetric(text, "garbage_worker_images_processed_total"));
  }
  if (METRICS.length) {
    const total = perWorker.reduce((a, b) => a + b, 0);
    check(total >= upload.length, `workers processed ${perWorker.join(" + ")} = ${total} images`);
  }
  if (failures.length) {
    console.error(`check-stack: ${failures.length} check(s) failed:\n  ${failures.join("\n  ")}`);
    process.exit(1);
  }
  console.log(`check-stack: all checks passed (${upload.length} images in ${seconds.toFixed(1)} s)`);
}

const sorted = (o) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

function sumMetric(text, name) {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.split(" ").at(-1));
  }
  return sum;
}

main().catch((err) => {
  console.error(`check-stack: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
