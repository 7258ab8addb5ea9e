import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { ApiError } from "./errors";
import type { AppEnv } from "./types";

const digest = (value: string) => createHash("sha256").update(value).digest();

/**
 * Bearer API keys for /v1. Keys are compared as sha256 digests with timingSafeEqual so response time does
 * not reveal how much of a guess matched. No keys configured means the API is open (development).
 */
export function apiKeyAuth(keys: readonly string[]): MiddlewareHandler<AppEnv> {
  const expected = keys.map(digest);
  return async (c, next) => {
    if (expected.length === 0) return next();
    const match = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "");
    const given = match?.[1] ? digest(match[1]) : null;
    // Every key is compared, whatever the outcome, to keep the timing flat.
    const ok = given !== null && expected.map((key) => timingSafeEqual(key, given)).some(Boolean);
    if (!ok) {
      c.header("WWW-Authenticate", 'Bearer realm="garbage-sort"');
      throw new ApiError(401, "unauthorized", "missing or invalid API key (Authorization: Bearer <key>)");
    }
    return next();
  };
}
