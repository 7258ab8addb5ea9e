import type { MiddlewareHandler } from "hono";
import { ApiError } from "./errors";
import { principalOf } from "./principal";
import type { AppEnv } from "./types";

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A token bucket per API key (the principal set by apiKeyAuth), held in this process: with several API
 * processes each allows the full rate, so a key's real limit is rps x processes. Buckets are per principal,
 * never per presented string, so made-up keys (already refused with 401) cannot grow the map. In open mode
 * (no keys) every caller shares one bucket.
 */
export function rateLimit(options: {
  rps: number;
  burst: number;
  now?: () => number;
}): MiddlewareHandler<AppEnv> {
  const { rps, burst } = options;
  const now = options.now ?? Date.now;
  const buckets = new Map<string, Bucket>();
  return async (c, next) => {
    if (rps <= 0) return next();
    const id = principalOf(c).id;
    const t = now();
    const bucket = buckets.get(id) ?? { tokens: burst, at: t };
    bucket.tokens = Math.min(burst, bucket.tokens + ((t - bucket.at) / 1000) * rps);
    bucket.at = t;
    buckets.set(id, bucket);
    if (bucket.tokens < 1) {
      const retryAfterS = Math.max(1, Math.ceil((1 - bucket.tokens) / rps));
      throw new ApiError(
        429,
        "rate_limited",
        `too many requests for this API key (${rps}/s, burst ${burst}); retry after ${retryAfterS} s`,
        undefined,
        retryAfterS,
      );
    }
    bucket.tokens -= 1;
    return next();
  };
}
