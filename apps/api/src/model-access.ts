import { ALL_SITES, getModelVersion, ModelRegistryError, type ModelVersionRow } from "@garbage/db";
import { ModelFilesError } from "@garbage/models";
import type { Context } from "hono";
import { ApiError } from "./errors";
import { type Principal, principalOf } from "./principal";
import type { AppEnv, RouteDeps } from "./types";

/** A version a key may see: one for every site, or one whose scope shares a site with the key's. */
export function maySeeVersion(p: Principal, v: Pick<ModelVersionRow, "sites">): boolean {
  return p.sites === null || v.sites === null || v.sites.some((s) => p.sites?.includes(s));
}

/** An assignment a key may see: its own sites' and '*' (which serves its sites too). */
export const maySeeSite = (p: Principal, site: string) =>
  p.sites === null || site === ALL_SITES || p.sites.includes(site);

/** What serves a site changes every result there and in '*' every site's: only keys for every site. */
export function assertMayChangeModels(c: Context<AppEnv>): Principal {
  const p = principalOf(c);
  if (p.sites !== null) {
    throw new ApiError(
      403,
      "forbidden_site",
      "changing model versions affects every site's results: use a key for every site",
    );
  }
  return p;
}

/** The version by id or `name@version`, 404 when missing or outside the key's sites. */
export async function visibleVersion(
  c: Context<AppEnv>,
  deps: RouteDeps,
  id: string,
): Promise<ModelVersionRow> {
  const v = await getModelVersion(deps.db, id);
  if (!v || !maySeeVersion(principalOf(c), v)) throw new ApiError(404, "not_found", `no model version ${id}`);
  return v;
}

/** `name@version` of the shipped default the API itself loaded, if it read one. */
export const defaultVersionOf = (deps: RouteDeps) =>
  deps.model ? `${deps.model.name}@${deps.model.version}` : undefined;

const REGISTRY_STATUS = {
  duplicate: [409, "duplicate_version"],
  not_found: [404, "not_found"],
  invalid_state: [409, "invalid_state"],
  out_of_scope: [409, "out_of_scope"],
  not_assigned: [409, "not_assigned"],
  bad_sites: [400, "validation_error"],
} as const;

/** Registry and model-file refusals as the API's 4xx; anything else is rethrown unchanged. */
export function toApiError(err: unknown): unknown {
  if (err instanceof ModelRegistryError) {
    const [status, code] = REGISTRY_STATUS[err.code];
    return new ApiError(status, code, err.message);
  }
  if (err instanceof ModelFilesError) {
    return new ApiError(400, err.code === "checksum" ? "checksum_mismatch" : "invalid_model", err.message);
  }
  return err;
}
