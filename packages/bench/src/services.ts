import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { createDb, type DbHandle, ensureDatabase, migrate } from "@garbage/db";
import { createQueue, createRedis } from "@garbage/queue";
// The worker's integration tests start the same processes the same way; one copy of that code.
import {
  type ServiceProcess,
  startService,
  startWorkerProcess,
  stopProcess,
} from "../../../apps/worker/test/processes.js";
import { ChildRss } from "./rss.js";

/** The bench's own database (created if missing) and Redis; a fresh queue name per started service. */
export const DATABASE_URL =
  process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/garbage_bench";
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";

/**
 * Postgres (migrated), a temp image store and the API/worker processes of one suite case. Every process it
 * starts is tracked for peak RSS and stopped by stopAll() or close(), whatever happened.
 */
export class Services {
  private readonly procs: ServiceProcess[] = [];
  private readonly queues = new Set<string>();
  private rss = new ChildRss();

  private constructor(
    readonly db: DbHandle,
    readonly storeDir: string,
  ) {}

  static async open(): Promise<Services> {
    await ensureDatabase(DATABASE_URL);
    const db = createDb(DATABASE_URL, { max: 2 });
    await migrate(db.db);
    return new Services(db, await mkdtemp(path.join(tmpdir(), "garbage-bench-store-")));
  }

  /** The environment API and workers share: database, Redis, store and a new queue. */
  env(prefix: string): Record<string, string> {
    const queue = `${prefix}-${randomUUID()}`;
    this.queues.add(queue);
    return {
      DATABASE_URL,
      REDIS_URL,
      STORAGE_URL: pathToFileURL(this.storeDir).href,
      QUEUE_NAME: queue,
    };
  }

  /** `npm run start:api` as a child process on a free port; resolves once it listens. */
  async startApi(env: Record<string, string>): Promise<{ port: number; proc: ServiceProcess }> {
    const proc = await startService("api", "apps/api/src/index.ts", { ...env, PORT: "0" }, "api listening");
    this.track(proc);
    return { port: proc.ready.port as number, proc };
  }

  async startWorkers(count: number, env: Record<string, string>): Promise<ServiceProcess[]> {
    const started = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        startWorkerProcess(
          `worker-${i + 1}`,
          { ...env, METRICS_PORT: "0", METRICS_HOST: "127.0.0.1" },
          180_000,
        ),
      ),
    );
    for (const p of started) this.track(p);
    return started;
  }

  private track(p: ServiceProcess): void {
    this.procs.push(p);
    this.rss.add(p.pid);
  }

  /** Peak RSS of the processes started since the last stopAll(); then stops them and drops their queues. */
  async stopAll(signal: NodeJS.Signals = "SIGTERM"): Promise<{ sumMiB: number; maxPerProcessMiB: number }> {
    const rss = this.rss.finish();
    this.rss = new ChildRss();
    await Promise.all(this.procs.splice(0).map((p) => stopProcess(p, signal, 15_000)));
    if (this.queues.size > 0) {
      const redis = createRedis(REDIS_URL, { forWorker: false });
      for (const name of this.queues) {
        const queue = createQueue(redis, name);
        await queue.obliterate({ force: true }).catch(() => {});
        await queue.close();
      }
      this.queues.clear();
      redis.disconnect();
    }
    return rss;
  }

  async close(): Promise<void> {
    await this.stopAll("SIGKILL").catch(() => {});
    this.rss.finish();
    await this.db.close();
    await rm(this.storeDir, { recursive: true, force: true });
  }
}
