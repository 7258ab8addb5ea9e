import { and, eq, inArray, notExists, sql } from "drizzle-orm";
import type { DbOrTx } from "./client";
import {
  ALL_SITES,
  ModelRegistryError,
  type ModelVersionRow,
  normaliseSites,
  REGISTRY_LOCK,
  requireModelVersion,
  setModelState,
  toRow,
} from "./model-registry";
import { modelAssignments } from "./schema/model-assignments";
import { modelVersions } from "./schema/model-versions";

/** A version as promotion and rollback report it. */
export interface VersionRef {
  id: string;
  modelVersion: string;
}

export interface PromoteOutcome {
  version: ModelVersionRow;
  /** The sites (or '*') whose assignment changed, with what served them before (null: '*' or the default). */
  changes: { site: string; from: VersionRef | null }[];
  /** Versions left without any assignment, now retired. */
  retired: VersionRef[];
}

export interface RollbackOutcome {
  /** `to` null: the site's row is gone, so '*' (or the shipped default) serves it again. */
  changes: { site: string; from: VersionRef; to: VersionRef | null }[];
  retired: VersionRef[];
}

/** The requested sites, or the version's scope ('*' when it is for every site); never outside the scope. */
function promotionSites(version: ModelVersionRow, requested: readonly string[] | undefined): string[] {
  if (requested === undefined) return version.sites ?? [ALL_SITES];
  const trimmed = requested.map((s) => s.trim());
  if (trimmed.length === 1 && trimmed[0] === ALL_SITES) {
    if (version.sites !== null) {
      throw new ModelRegistryError(
        "out_of_scope",
        `${version.modelVersion} is for ${version.sites.join(", ")} only, not every site`,
      );
    }
    return [ALL_SITES];
  }
  const sites = normaliseSites(trimmed) ?? [];
  const outside = version.sites === null ? [] : sites.filter((s) => !version.sites?.includes(s));
  if (outside.length > 0) {
    throw new ModelRegistryError(
      "out_of_scope",
      `${version.modelVersion} is not for ${outside.join(", ")} (its sites: ${version.sites?.join(", ")})`,
    );
  }
  return sites;
}

async function refs(db: DbOrTx, ids: string[]): Promise<Map<string, VersionRef>> {
  if (ids.length === 0) return new Map();
  const rows = await db.select().from(modelVersions).where(inArray(modelVersions.id, ids));
  return new Map(rows.map((r) => [r.id, { id: r.id, modelVersion: toRow(r).modelVersion }]));
}

/** Active versions among `ids` that no assignment points to any more become retired. */
async function retireUnassigned(db: DbOrTx, ids: string[]): Promise<VersionRef[]> {
  if (ids.length === 0) return [];
  const rows = await db
    .update(modelVersions)
    .set({ state: "retired", updatedAt: sql`now()` })
    .where(
      and(
        inArray(modelVersions.id, [...new Set(ids)]),
        eq(modelVersions.state, "active"),
        notExists(
          db
            .select({ one: sql`1` })
            .from(modelAssignments)
            .where(eq(modelAssignments.versionId, modelVersions.id)),
        ),
      ),
    )
    .returning();
  return rows.map((r) => ({ id: r.id, modelVersion: toRow(r).modelVersion }));
}

/**
 * Makes `id` serve `sites` (default: its scope): each site's previous version is kept for a one-step
 * rollback, the version becomes active (a shadow stops shadowing) and versions left unassigned are retired.
 */
export async function promoteModelVersion(
  db: DbOrTx,
  id: string,
  options: { sites?: readonly string[]; by: string | null },
): Promise<PromoteOutcome> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${REGISTRY_LOCK})`);
    const version = await requireModelVersion(tx, id);
    const sites = promotionSites(version, options.sites);
    const current = await tx.select().from(modelAssignments).where(inArray(modelAssignments.site, sites));
    const bySite = new Map(current.map((a) => [a.site, a.versionId]));
    const changed: { site: string; from: string | null }[] = [];
    for (const site of sites) {
      const from = bySite.get(site) ?? null;
      if (from === version.id) continue;
      const values = { versionId: version.id, previousVersionId: from, assignedBy: options.by };
      await tx
        .insert(modelAssignments)
        .values({ site, ...values })
        .onConflictDoUpdate({ target: modelAssignments.site, set: { ...values, assignedAt: sql`now()` } });
      changed.push({ site, from });
    }
    const active = await setModelState(tx, version.id, "active");
    const previous = changed.flatMap((c) => (c.from ? [c.from] : []));
    const named = await refs(tx, previous);
    return {
      version: active,
      changes: changed.map((c) => ({ site: c.site, from: c.from ? (named.get(c.from) ?? null) : null })),
      retired: await retireUnassigned(tx, previous),
    };
  });
}

/**
 * Undoes the last promotion of each site (or '*'): the previous version serves again, or the row goes when
 * there was none. Refuses (not_assigned) when a site has no assignment to roll back.
 */
export async function rollbackSites(
  db: DbOrTx,
  options: { sites: readonly string[]; by: string | null },
): Promise<RollbackOutcome> {
  const sites = [...new Set(options.sites.map((s) => s.trim()).filter((s) => s.length > 0))];
  if (sites.length === 0) throw new ModelRegistryError("bad_sites", "name at least one site, or '*'");
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${REGISTRY_LOCK})`);
    const current = await tx.select().from(modelAssignments).where(inArray(modelAssignments.site, sites));
    const missing = sites.filter((s) => !current.some((a) => a.site === s));
    if (missing.length > 0) {
      throw new ModelRegistryError("not_assigned", `nothing to roll back for ${missing.join(", ")}`);
    }
    for (const a of current) {
      if (a.previousVersionId === null) {
        await tx.delete(modelAssignments).where(eq(modelAssignments.site, a.site));
        continue;
      }
      await tx
        .update(modelAssignments)
        .set({
          versionId: a.previousVersionId,
          previousVersionId: null,
          assignedAt: sql`now()`,
          assignedBy: options.by,
        })
        .where(eq(modelAssignments.site, a.site));
      await setModelState(tx, a.previousVersionId, "active");
    }
    const named = await refs(
      tx,
      current.flatMap((a) => [a.versionId, a.previousVersionId ?? a.versionId]),
    );
    const ref = (versionId: string) => named.get(versionId) ?? { id: versionId, modelVersion: "?" };
    return {
      changes: current.map((a) => ({
        site: a.site,
        from: ref(a.versionId),
        to: a.previousVersionId ? ref(a.previousVersionId) : null,
      })),
      retired: await retireUnassigned(
        tx,
        current.map((a) => a.versionId),
      ),
    };
  });
}
