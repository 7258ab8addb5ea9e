import type { ClassifyQueue } from "./jobs";

const STATES = [
  "waiting",
  "active",
  "delayed",
  "prioritized",
  "failed",
  "completed",
  "waiting-children",
] as const;
export type QueueDepth = Record<(typeof STATES)[number], number>;

/** Job counts per state, for metrics; rejects after `timeoutMs` so a scrape never hangs on a Redis outage. */
export async function queueDepth(queue: ClassifyQueue, timeoutMs = 1_000): Promise<QueueDepth> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`queue depth timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const counts = await Promise.race([queue.getJobCounts(...STATES), timeout]);
    const depth = {} as QueueDepth;
    for (const state of STATES) depth[state] = counts[state] ?? 0;
    return depth;
  } finally {
    clearTimeout(timer);
  }
}
