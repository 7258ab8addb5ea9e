import { Redis } from "ioredis";

export type { Redis };

export interface CreateRedisOptions {
  /** Workers block on Redis and must never give up on a command; producers should fail fast instead. */
  forWorker: boolean;
  /** Called on connection errors; ioredis keeps reconnecting in the background either way. */
  onError?: (err: Error) => void;
}

export function createRedis(url: string, options: CreateRedisOptions): Redis {
  const redis = options.forWorker
    ? new Redis(url, { maxRetriesPerRequest: null })
    : new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  // An unhandled 'error' event would crash the process during a Redis outage.
  redis.on("error", options.onError ?? (() => {}));
  return redis;
}

/** Resolves true when Redis answers PING within the timeout. */
export async function pingRedis(redis: Redis, timeoutMs = 1_000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([redis.ping().then((reply) => reply === "PONG"), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
