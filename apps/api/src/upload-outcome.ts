import type { Context } from "hono";
import { ApiError } from "./errors";
import type { ApiMetrics } from "./metrics";
import type { AppEnv } from "./types";

/**
 * Runs an idempotent upload (POST /v1/batches, POST /v1/results): counts its outcome in
 * garbage_api_uploads_total (created, replayed; rejected for a 4xx, failed otherwise) and marks a replay with
 * `Idempotent-Replayed: true`.
 */
export async function countUpload<T extends { replayed: boolean }>(
  c: Context<AppEnv>,
  uploads: ApiMetrics["uploads"],
  run: () => Promise<T>,
): Promise<T> {
  try {
    const outcome = await run();
    uploads.inc({ outcome: outcome.replayed ? "replayed" : "created" });
    if (outcome.replayed) c.header("Idempotent-Replayed", "true");
    return outcome;
  } catch (err) {
    const status = err instanceof ApiError ? err.status : 500;
    uploads.inc({ outcome: status < 500 ? "rejected" : "failed" });
    throw err;
  }
}
