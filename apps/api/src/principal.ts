import type { Context } from "hono";
import { ApiError } from "./errors";
import type { AppEnv } from "./types";

/**
 * Who is calling, as the auth middleware established it. Every data route asks these helpers, never the
 * key itself, so site scoping lives in this one file.
 */
export interface Principal {
  /** Stable identity: `db:<api_keys.id>`, `env:<sha256 prefix>`, or '' when the API is open (no keys). */
  id: string;
  /** The sites this key may read and submit to; null means every site (and batches without one). */
  sites: string[] | null;
  /** The database key's name; null for env keys and the open API. */
  name: string | null;
}

export const ANONYMOUS: Principal = { id: "", sites: null, name: null };

/** Who a review is recorded as: the key's name, else its principal id, else "anonymous" (open API). */
export const reviewerOf = (p: Principal): string => p.name ?? (p.id || "anonymous");

export const principalOf = (c: Context<AppEnv>): Principal => c.get("principal") ?? ANONYMOUS;

/** The scope to pass to @garbage/db reads (getBatch): null is every site. */
export const siteScope = (c: Context<AppEnv>) => principalOf(c).sites;

/** Throws 403 forbidden_site unless the key may submit a batch for this site (none counts as a site). */
export function assertMaySubmit(principal: Principal, site: string | null | undefined): void {
  if (principal.sites === null) return;
  if (site && principal.sites.includes(site)) return;
  throw new ApiError(
    403,
    "forbidden_site",
    site
      ? `this API key may not submit to site "${site}"`
      : `this API key is limited to sites ${principal.sites.join(", ")}: set the site field`,
  );
}

/**
 * The stats filters a key may use: an explicit site must be one of its sites (else 403), and without one the
 * query is narrowed to all of its sites.
 */
export function statsScope(
  principal: Principal,
  site: string | undefined,
): { site: string | null; sites: string[] | null } {
  if (site !== undefined && principal.sites !== null && !principal.sites.includes(site)) {
    throw new ApiError(403, "forbidden_site", `this API key may not read site "${site}"`);
  }
  return { site: site ?? null, sites: site === undefined ? principal.sites : null };
}
