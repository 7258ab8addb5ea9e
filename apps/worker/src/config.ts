import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { resolveModel } from "@garbage/inference";
import { LOG_LEVELS } from "@garbage/log";
import { DEFAULT_QUEUE_NAME } from "@garbage/queue";
import { DEFAULT_MAX_REPAIRS } from "@garbage/recovery";
import { z } from "zod";

export const REPO_ROOT = path.resolve(import.meta.dirname, "../../..");

/**
 * Images per session.run. 8, measured with the int8 model on a 2-core AVX2 host (docs/capacity.md, "Tuning"):
 * 16 and 32 ran no faster (session.run is 33-34 images/s at batch 1, 8 and 32 there) and cost each worker
 * 130 and 440 MiB more at its peak (32 took a worker past 850 MiB).
 */
export const DEFAULT_BATCH_SIZE = 8;

// An empty variable (`FOO=` in a compose file) means "use the default", not "invalid".
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (typeof v === "string" && v.trim() === "" ? undefined : v), schema);
const int = (min: number, fallback: number) => optional(z.coerce.number().int().min(min).default(fallback));

export const configSchema = z.object({
  DATABASE_URL: z.string().min(1),
  REDIS_URL: optional(z.string().default("redis://127.0.0.1:6379")),
  // The API's default too (it resolves data/images against its cwd, the repo root under npm scripts).
  STORAGE_URL: optional(z.string().default(pathToFileURL(path.join(REPO_ROOT, "data/images")).href)),
  // BullMQ uses ':' as its key separator.
  QUEUE_NAME: optional(
    z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/)
      .default(DEFAULT_QUEUE_NAME),
  ),
  // "fp32", "int8" or a path; unset: int8 on a CPU when it is there, the float model on a GPU.
  MODEL_PATH: optional(z.string().optional()),
  WORKER_PROVIDER: optional(z.enum(["cpu", "cuda"]).default("cpu")),
  WORKER_THREADS: int(1, availableParallelism()),
  BATCH_SIZE: int(1, DEFAULT_BATCH_SIZE),
  BATCH_WAIT_MS: int(0, 30),
  WORKER_CONCURRENCY: int(1, 4),
  // A dead worker's jobs are back in the queue within about LOCK_DURATION_MS + STALLED_INTERVAL_MS (12 s).
  // The lock is renewed every LOCK_DURATION_MS / 2 from a main thread that never runs the model.
  LOCK_DURATION_MS: int(1_000, 8_000),
  STALLED_INTERVAL_MS: int(500, 4_000),
  MAX_STALLED_COUNT: int(0, 1),
  METRICS_PORT: int(0, 9464),
  METRICS_HOST: optional(z.string().default("0.0.0.0")),
  // Reconciliation sweep (@garbage/recovery); 0 turns it off in this process.
  SWEEP_INTERVAL_MS: int(0, 30_000),
  // How often each worker asks Redis whether it lost its data (a new run id, the marker key gone), to sweep at
  // once when it did; 0 turns the watch off (the sweep then notices at its next pass).
  SWEEP_WATCH_MS: int(0, 1_000),
  // For batches the API has not marked enqueued: longer than its 10 s enqueue timeout, so the sweep never races
  // a request that is still enqueueing. Batches it marked are repaired at any age.
  SWEEP_MIN_AGE_MS: int(0, 60_000),
  // Must exceed the longest upload: its files have no rows until the request is fully stored and committed.
  ORPHAN_GRACE_MS: int(1_000, 3_600_000),
  // Times the sweep runs a job that failed for good again before its images are recorded as failed; with the
  // sweep off in every process, 0 makes the worker record them at once.
  MAX_REPAIRS: int(0, DEFAULT_MAX_REPAIRS),
  LOG_LEVEL: optional(z.string().toLowerCase().pipe(z.enum(LOG_LEVELS)).default("info")),
  // Site models (issue 19). Loaded versions per process, the shipped default included: each costs a session's
  // memory (README, "MAX_MODELS"), and a site whose version is not loaded waits for a load.
  MAX_MODELS: int(1, 2),
  // How often the site -> version assignments, shadow versions and site thresholds are re-read: a promotion
  // or rollback reaches every worker within this, without a restart.
  MODEL_REFRESH_MS: int(100, 5_000),
  // Registry versions' files, fetched from storage and sha256-checked; shared by the processes of a host.
  MODEL_CACHE_DIR: optional(z.string().default(path.join(tmpdir(), "garbage-models"))),
  // Share of a shadow version's live images (by a hash of the image id) that it also classifies.
  SHADOW_RATE: optional(z.coerce.number().min(0).max(1).default(0.1)),
  // Share of ok results picked for a blind audit when recorded (a hash of the image id, so a retry picks the
  // same): the uniform sample behind /v1/stats' quality estimates. 0 turns audits off.
  AUDIT_RATE: optional(z.coerce.number().min(0).max(1).default(0.02)),
  // Per-site review thresholds: the unflagged part must reach this accuracy on the site's reviewed images,
  // fitted once a site has this many reviewed results of its version, at most every SITE_THRESHOLD_INTERVAL_MS.
  REVIEW_TARGET_ACCURACY: optional(z.coerce.number().gt(0).max(1).default(0.9)),
  SITE_THRESHOLD_MIN_REVIEWS: int(1, 50),
  SITE_THRESHOLD_INTERVAL_MS: int(0, 300_000),
});

export type WorkerConfig = Omit<z.infer<typeof configSchema>, "MODEL_PATH"> & { MODEL_PATH: string };

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parses the environment once, at start; every problem is reported in one message. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success)
    throw new ConfigError(`invalid worker configuration:\n${z.prettifyError(parsed.error)}`);
  const c = parsed.data;
  return {
    ...c,
    MODEL_PATH: resolveModel(c.MODEL_PATH, path.join(REPO_ROOT, "models"), c.WORKER_PROVIDER, REPO_ROOT),
  };
}
