/**
 * @garbage/queue: the contract between the API (producer) and the worker (consumer).
 *
 * - One BullMQ queue, default name `garbage-classify` (configurable so tests can use random names).
 * - Job name `classify`; job data `ClassifyJob`: `{ batchId, images: [{ id, key, enqueuedAt? }] }`, a chunk of
 *   at most `chunkSize` (default 16) images of ONE batch. `id` is the images.id row, `key` the ImageStore key.
 *   Payloads carry ids and storage keys, never image bytes.
 * - Job ids are deterministic: `${batchId}-${chunkIndex}` (BullMQ forbids ':'), so enqueueing the same batch
 *   again is a no-op for every chunk that is still known to Redis.
 * - Default job options: 5 attempts with exponential backoff, bounded removeOnComplete/removeOnFail.
 * - The worker records outcomes with `recordResults` from @garbage/db, which is idempotent per image, so a
 *   retried or duplicated job never double counts. A worker should treat a missing image row or storage key
 *   as "batch gone" rather than retrying forever.
 * - Redis connections: `createRedis(url, { forWorker: true })` for workers (maxRetriesPerRequest null, as
 *   BullMQ requires for blocking commands); producers fail fast instead (enableOfflineQueue false).
 */

export { type QueueDepth, queueDepth } from "./depth";
export {
  addJobs,
  type BatchJob,
  batchJobs,
  CLASSIFY_JOB_NAME,
  type ClassifyJob,
  type ClassifyJobImage,
  type ClassifyQueue,
  chunkJobId,
  createQueue,
  DEFAULT_CHUNK_SIZE,
  DEFAULT_QUEUE_NAME,
  defaultJobOptions,
  type EnqueueOptions,
  enqueueBatch,
} from "./jobs";
export { type CreateRedisOptions, createRedis, pingRedis, type Redis } from "./redis";
