import { setTimeout as sleep } from "node:timers/promises";

export interface RetryOptions {
  /** Once aborted, no new attempt starts and the last error is thrown. */
  signal: AbortSignal;
  firstDelayMs?: number;
  maxDelayMs?: number;
  onError?: (err: unknown, attempt: number, delayMs: number) => void;
}

/**
 * Calls `fn` until it resolves, waiting between attempts with exponential backoff and jitter (so many callers
 * waiting out the same outage do not hammer it in step).
 */
export async function retryUntilDone<T>(fn: () => Promise<T>, options: RetryOptions): Promise<T> {
  const max = options.maxDelayMs ?? 10_000;
  let delay = options.firstDelayMs ?? 500;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await fn();
    } catch (err) {
      if (options.signal.aborted) throw err;
      const wait = Math.round(delay * (0.5 + Math.random() / 2));
      options.onError?.(err, attempt, wait);
      const slept = await sleep(wait, true, { signal: options.signal }).catch(() => false);
      if (!slept) throw err;
      delay = Math.min(delay * 2, max);
    }
  }
}
