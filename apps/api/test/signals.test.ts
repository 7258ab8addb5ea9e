/**
 * Issue 11: the API process and its signals. Handlers are installed before start-up, so a SIGTERM while the
 * API starts (here: waiting for the migration lock another instance holds) exits 0 instead of dying by the
 * signal; a SIGTERM while running drains in-flight uploads, and the same signal again (a wrapper's relay)
 * is ignored. Real processes (`node --import tsx`), the test database and Redis, a tiny model.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { createDb } from "@garbage/db";
import { writeTinyModel } from "@garbage/onnx";
import { createQueue, createRedis } from "@garbage/queue";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { DATABASE_URL, openHarness, png, REDIS_URL } from "./helpers";

const ROOT = path.resolve(import.meta.dirname, "../../..");
const MIGRATION_LOCK = 7_305_112_001; // packages/db/src/migrate.ts
const KEY = `signals-${randomUUID()}`;

interface Api {
  child: ChildProcess;
  logs: { msg?: string; [k: string]: unknown }[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first log line whose msg is `msg`. */
  line(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

let dir: string;
let model: string;
const running: ChildProcess[] = [];
const queues: string[] = [];

beforeAll(async () => {
  // Migrated before the tests: the start-up test holds the migration lock and expects the API to wait on it.
  await (await openHarness()).close();
  dir = await mkdtemp(path.join(tmpdir(), "api-signals-"));
  model = await writeTinyModel(dir, { classes: ["red", "green", "blue"], seed: 3 });
});
afterEach(() => {
  for (const child of running.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
});
afterAll(async () => {
  const redis = createRedis(REDIS_URL, { forWorker: false });
  for (const name of queues) {
    const queue = createQueue(redis, name);
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
  }
  redis.disconnect();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function startApi(): Api {
  const queueName = `signals-${randomUUID()}`;
  queues.push(queueName);
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "apps/api/src/index.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL,
      REDIS_URL,
      PORT: "0",
      QUEUE_NAME: queueName,
      STORAGE_URL: pathToFileURL(path.join(dir, "store")).href,
      MODEL_PATH: model,
      CLASSIFY_THREADS: "1",
      API_KEYS: KEY,
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  running.push(child);
  const logs: Api["logs"] = [];
  const waiters: { msg: string; resolve: (l: Record<string, unknown>) => void }[] = [];
  let buffered = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    const lines = (buffered + chunk).split("\n");
    buffered = lines.pop() ?? "";
    for (const text of lines.filter((l) => l.trim())) {
      const parsed = JSON.parse(text) as Api["logs"][number];
      logs.push(parsed);
      for (const w of waiters.filter((w) => w.msg === parsed.msg)) w.resolve(parsed);
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const line = (msg: string, timeoutMs = 30_000) => {
    const seen = logs.find((l) => l.msg === msg);
    if (seen) return Promise.resolve(seen);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${msg}" line in ${timeoutMs} ms`)), timeoutMs);
      waiters.push({
        msg,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
      void exited.then(({ code, signal }) => reject(new Error(`exited (${code ?? signal}) before "${msg}"`)));
    });
  };
  return { child, logs, exited, line };
}

it("a SIGTERM during start-up (waiting for the migration lock) exits 0, not by the signal", async () => {
  const handle = createDb(DATABASE_URL, { max: 1 });
  const holder = await handle.db.$client.connect();
  try {
    await holder.query("select pg_advisory_lock($1)", [MIGRATION_LOCK]);
    const api = startApi();
    await api.line("starting");
    // The API is now blocked in migrate() on the lock held above.
    await new Promise((resolve) => setTimeout(resolve, 300));
    api.child.kill("SIGTERM");
    expect(await api.exited).toEqual({ code: 0, signal: null });
    expect(api.logs.find((l) => l.msg === "shutting down")).toMatchObject({
      signal: "SIGTERM",
      starting: true,
    });
    expect(api.logs.map((l) => l.msg)).not.toContain("api listening");
  } finally {
    holder.release();
    await handle.close();
  }
});

it("a SIGTERM while an upload is in flight drains it, and a repeated SIGTERM is ignored", async () => {
  const api = startApi();
  const { port } = (await api.line("api listening")) as { port: number };

  // A multipart upload sent in two halves: the second goes out only after both signals.
  const boundary = `b${randomUUID()}`;
  const body = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="images"; filename="a.png"\r\n` +
        "Content-Type: image/png\r\n\r\n",
    ),
    await png(200, 10, 10),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const response = new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = request(
      {
        port,
        host: "127.0.0.1",
        method: "POST",
        path: "/v1/batches",
        headers: {
          Authorization: `Bearer ${KEY}`,
          "Content-Type": `multipart/form-data; boundary=${boundary}`,
          "Content-Length": body.length,
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8").on("data", (c: string) => {
          text += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on("error", reject);
    req.write(body.subarray(0, 40));
    setTimeout(() => {
      api.child.kill("SIGTERM");
      setTimeout(() => api.child.kill("SIGTERM"), 100);
      setTimeout(() => req.end(body.subarray(40)), 600);
    }, 300);
  });

  const res = await response;
  expect(res.status, res.text).toBe(202);
  expect(await api.exited).toEqual({ code: 0, signal: null });
  const msgs = api.logs.map((l) => l.msg);
  expect(msgs.filter((m) => m === "shutting down")).toHaveLength(1);
  expect(msgs).toContain("already stopping, signal ignored");
  expect(msgs.indexOf("stopped")).toBeGreaterThan(msgs.lastIndexOf("request"));
  expect(api.logs.find((l) => l.msg === "request")).toMatchObject({ route: "/v1/batches", status: 202 });
});
