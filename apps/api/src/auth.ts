import { createHash, timingSafeEqual } from "node:crypto";
import { type DbOrTx, findActiveApiKey, hasApiKeys, isApiKeyActive } from "@garbage/db";
import type { MiddlewareHandler } from "hono";
import type { EnvApiKey } from "./config";
import { ApiError } from "./errors";
import { ANONYMOUS, type Principal } from "./principal";
import type { AppEnv } from "./types";

const digest = (value: string) => createHash("sha256").update(value).digest();

// A flood of made-up keys must not grow the cache without bound; past this it simply starts over.
const MAX_CACHED = 10_000;

export interface AuthOptions {
  envKeys: readonly EnvApiKey[];
  db: DbOrTx;
  /** Database answers (hits, misses, "any keys at all") are reused this long; 0 asks every time. */
  cacheMs: number;
  /**
   * "basic": the key is the password of HTTP Basic credentials (user ignored), for pages a browser opens
   * directly (the queue view), which cannot send a Bearer header; the browser asks for it and keeps it.
   */
  scheme?: "bearer" | "basic";
}

function presentedKey(header: string, scheme: "bearer" | "basic"): string | null {
  if (scheme === "bearer") return /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] ?? null;
  const encoded = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header)?.[1];
  if (!encoded) return null;
  const decoded = Buffer.from(encoded, "base64").toString("utf8");
  const password = decoded.slice(decoded.indexOf(":") + 1);
  return password.length > 0 ? password : null;
}

/**
 * Bearer API keys for /v1, from API_KEYS and from the api_keys table (managed with `garbage keys`). Sets
 * `principal` on the context. Env keys are compared as sha256 digests with timingSafeEqual, every one of them
 * whatever the outcome, so response time does not reveal how much of a guess matched; database keys are
 * looked up by the hex sha256 of what was presented, so an index walk can only reveal digest prefixes, which
 * say nothing about the key. With no env keys and no database key ever created the API is open
 * (development); once a key exists, revoking it never reopens the API.
 */
export function apiKeyAuth(options: AuthOptions): MiddlewareHandler<AppEnv> {
  const expected = options.envKeys.map((k) => ({ digest: digest(k.key), principal: envPrincipal(k) }));
  const cache = new Map<string, { principal: Principal | null; until: number }>();
  let anyDbKeys: { value: boolean; until: number } | null = null;

  async function dbKey(hash: string): Promise<Principal | null> {
    const now = Date.now();
    const hit = cache.get(hash);
    if (hit && hit.until > now) return hit.principal;
    const row = await findActiveApiKey(options.db, hash);
    const principal = row ? { id: `db:${row.id}`, sites: row.sites, name: row.name } : null;
    if (options.cacheMs > 0) {
      if (cache.size >= MAX_CACHED) cache.clear();
      cache.set(hash, { principal, until: now + options.cacheMs });
    }
    return principal;
  }

  async function isOpen(): Promise<boolean> {
    if (expected.length > 0) return false;
    const now = Date.now();
    if (!anyDbKeys || anyDbKeys.until <= now) {
      anyDbKeys = { value: await hasApiKeys(options.db), until: now + options.cacheMs };
    }
    return !anyDbKeys.value;
  }

  return async (c, next) => {
    const scheme = options.scheme ?? "bearer";
    const presented = presentedKey(c.req.header("authorization") ?? "", scheme);
    const given = presented ? digest(presented) : null;
    let principal: Principal | null = null;
    if (given !== null) {
      for (const key of expected) {
        if (timingSafeEqual(key.digest, given) && principal === null) principal = key.principal;
      }
      principal ??= await dbKey(given.toString("hex"));
    }
    if (principal === null && (await isOpen())) principal = ANONYMOUS;
    if (principal === null) {
      c.header(
        "WWW-Authenticate",
        scheme === "basic" ? 'Basic realm="garbage-sort"' : 'Bearer realm="garbage-sort"',
      );
      throw new ApiError(401, "unauthorized", "missing or invalid API key (Authorization: Bearer <key>)");
    }
    c.set("principal", principal);
    return next();
  };
}

/**
 * Whether the principal a download link was signed for may still read: its database key not revoked, its env
 * key still configured, the open API still open. Asked on every use, uncached, so a link dies with its key.
 */
export function principalStillValid(
  options: Pick<AuthOptions, "envKeys" | "db">,
): (principal: Principal) => Promise<boolean> {
  const envIds = new Set(options.envKeys.map((k) => envPrincipal(k).id));
  return async (principal) => {
    if (principal.id.startsWith("env:")) return envIds.has(principal.id);
    if (principal.id.startsWith("db:")) return isApiKeyActive(options.db, principal.id.slice(3));
    return principal.id === "" && envIds.size === 0 && !(await hasApiKeys(options.db));
  };
}

/** Identified by a digest prefix, not its position: reordering API_KEYS must not move idempotency keys. */
export function envPrincipal(key: EnvApiKey): Principal {
  return { id: `env:${digest(key.key).toString("hex").slice(0, 16)}`, sites: key.sites, name: null };
}
