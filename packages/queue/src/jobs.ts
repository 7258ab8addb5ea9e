import { type DefaultJobOptions, Queue } from "bullmq";
import type { Redis } from "ioredis";

export const DEFAULT_QUEUE_NAME = "garbage-classify";
export const DEFAULT_CHUNK_SIZE = 16;
export const CLASSIFY_JOB_NAME = "classify";

export interface ClassifyJobImage {
  /** images.id */
  id: string;
  /** ImageStore key of the original upload. */
  key: string;
  /** Epoch ms when the API enqueued the image; lets the worker report queue and end-to-end latency. */
  enqueuedAt?: number;
}

export interface ClassifyJob {
  batchId: string;
  images: ClassifyJobImage[];
}

export type ClassifyQueue = Queue<ClassifyJob, void, typeof CLASSIFY_JOB_NAME>;

export const defaultJobOptions: DefaultJobOptions = {
  attempts: 5,
  backoff: { type: "exponential", delay: 1_000 },
  // Bounded so Redis memory stays flat; results live in Postgres, not in job return values.
  removeOnComplete: { age: 3_600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3_600, count: 50_000 },
};

export function createQueue(connection: Redis, name: string = DEFAULT_QUEUE_NAME): ClassifyQueue {
  const queue: ClassifyQueue = new Queue(name, { connection, defaultJobOptions });
  // Without a listener a Redis outage would surface as an unhandled 'error' event and kill the process.
  queue.on("error", () => {});
  return queue;
}

export function chunkJobId(batchId: string, chunkIndex: number): string {
  if (batchId.includes(":")) throw new Error(`batch id must not contain ':' (BullMQ job ids): ${batchId}`);
  return `${batchId}-${chunkIndex}`;
}

export interface EnqueueOptions {
  chunkSize?: number;
  /** Stamped on images that have no enqueuedAt yet; defaults to now. */
  enqueuedAt?: number;
  /**
   * Reject after this long (default 10 s). BullMQ waits indefinitely for a connection that never became ready;
   * a producer answering an HTTP request must not. The add may still land later; it is idempotent.
   */
  timeoutMs?: number;
}

export interface BatchJob {
  name: typeof CLASSIFY_JOB_NAME;
  data: ClassifyJob;
  opts: { jobId: string };
}

/**
 * The batch's jobs: its images chunked by position into at most `chunkSize` each, job ids `${batchId}-${i}`.
 * The same images in the same order always give the same jobs, which is what makes re-adding them a no-op for
 * BullMQ and lets recovery rebuild exactly the jobs Redis lost.
 */
export function batchJobs(
  batchId: string,
  images: readonly ClassifyJobImage[],
  options: Pick<EnqueueOptions, "chunkSize" | "enqueuedAt"> = {},
): BatchJob[] {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new Error(`chunkSize must be a positive integer`);
  const enqueuedAt = options.enqueuedAt ?? Date.now();
  const jobs: BatchJob[] = [];
  for (let start = 0; start < images.length; start += chunkSize) {
    const chunk = images.slice(start, start + chunkSize).map((image) => ({
      id: image.id,
      key: image.key,
      enqueuedAt: image.enqueuedAt ?? enqueuedAt,
    }));
    const jobId = chunkJobId(batchId, start / chunkSize);
    jobs.push({ name: CLASSIFY_JOB_NAME, data: { batchId, images: chunk }, opts: { jobId } });
  }
  return jobs;
}

/** Adds jobs in one round trip; BullMQ ignores a job whose id it still knows. */
export async function addJobs(
  queue: ClassifyQueue,
  jobs: readonly BatchJob[],
  timeoutMs = 10_000,
): Promise<void> {
  if (jobs.length > 0) await withTimeout(queue.addBulk([...jobs]), timeoutMs);
}

/**
 * Adds the batch's images as jobs of at most `chunkSize` images. Chunking is by position, so calling it again
 * with the same images in the same order yields the same job ids and BullMQ ignores the duplicates.
 */
export async function enqueueBatch(
  queue: ClassifyQueue,
  batchId: string,
  images: readonly ClassifyJobImage[],
  options: EnqueueOptions = {},
): Promise<{ jobIds: string[] }> {
  const jobs = batchJobs(batchId, images, options);
  await addJobs(queue, jobs, options.timeoutMs);
  return { jobIds: jobs.map((job) => job.opts.jobId) };
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`enqueue timed out after ${ms} ms (is Redis reachable?)`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
