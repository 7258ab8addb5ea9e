import { and, asc, desc, eq, inArray, type SQL, sql } from "drizzle-orm";
import type { DbOrTx } from "./client";
import { modelAssignments } from "./schema/model-assignments";
import { type ModelFile, type ModelState, modelVersions, type TrainedOn } from "./schema/model-versions";

export type { ModelFile, ModelState, TrainedOn };

/** The site key of the assignment that serves every site without its own. */
export const ALL_SITES = "*";

export type ModelVersionRow = typeof modelVersions.$inferSelect & {
  /** `name@version`: what results record and workers report. */
  modelVersion: string;
};

export interface ModelAssignment {
  site: string;
  versionId: string;
  previousVersionId: string | null;
  assignedAt: Date;
  assignedBy: string | null;
}

export interface NewModelVersion {
  name: string;
  version: string;
  sha256: string;
  sites?: readonly string[] | null;
  manifest: unknown;
  int8Manifest?: unknown;
  files: ModelFile[];
  trainedOn?: TrainedOn | null;
  dataUntil?: Date | null;
  metrics?: unknown;
  createdBy?: string | null;
}

export type ModelRegistryErrorCode =
  | "duplicate"
  | "not_found"
  | "invalid_state"
  | "out_of_scope"
  | "not_assigned"
  | "bad_sites";

/** A refused registry change; `code` is stable (the API maps it to 404/409/400). */
export class ModelRegistryError extends Error {
  constructor(
    readonly code: ModelRegistryErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "ModelRegistryError";
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Serialises promotions and rollbacks: each reads assignments and states, then rewrites both.
export const REGISTRY_LOCK = 7_305_112_019;

export const toRow = (r: typeof modelVersions.$inferSelect): ModelVersionRow => ({
  ...r,
  modelVersion: `${r.name}@${r.version}`,
});

/** Trimmed, de-duplicated sites; null = every site. '*' is not a site: a scope of every site is null. */
export function normaliseSites(sites: readonly string[] | null | undefined): string[] | null {
  if (sites == null) return null;
  const clean = [...new Set(sites.map((s) => s.trim()).filter((s) => s.length > 0))];
  if (clean.length === 0 || clean.includes(ALL_SITES)) {
    throw new ModelRegistryError(
      "bad_sites",
      "sites must name at least one site (or be null for every site)",
    );
  }
  return clean;
}

export async function insertModelVersion(db: DbOrTx, input: NewModelVersion): Promise<ModelVersionRow> {
  const [row] = await db
    .insert(modelVersions)
    .values({
      name: input.name,
      version: input.version,
      sha256: input.sha256,
      sites: normaliseSites(input.sites),
      manifest: input.manifest,
      int8Manifest: input.int8Manifest ?? null,
      files: input.files,
      trainedOn: input.trainedOn ?? null,
      dataUntil: input.dataUntil ?? null,
      metrics: input.metrics ?? null,
      createdBy: input.createdBy ?? null,
    })
    .onConflictDoNothing({ target: [modelVersions.name, modelVersions.version] })
    .returning();
  if (!row) {
    throw new ModelRegistryError("duplicate", `${input.name}@${input.version} is already registered`);
  }
  return toRow(row);
}

export async function listModelVersions(
  db: DbOrTx,
  options: { states?: ModelState[] } = {},
): Promise<ModelVersionRow[]> {
  const rows = await db
    .select()
    .from(modelVersions)
    .where(options.states ? inArray(modelVersions.state, options.states) : undefined)
    .orderBy(desc(modelVersions.createdAt), asc(modelVersions.id));
  return rows.map(toRow);
}

/** By id, or by `name@version` (the version is what follows the last '@'). */
export async function getModelVersion(
  db: DbOrTx,
  idOrModelVersion: string,
): Promise<ModelVersionRow | undefined> {
  let where: SQL | undefined;
  if (UUID.test(idOrModelVersion)) {
    where = eq(modelVersions.id, idOrModelVersion);
  } else {
    const at = idOrModelVersion.lastIndexOf("@");
    if (at <= 0 || at === idOrModelVersion.length - 1) return undefined;
    where = and(
      eq(modelVersions.name, idOrModelVersion.slice(0, at)),
      eq(modelVersions.version, idOrModelVersion.slice(at + 1)),
    );
  }
  const [row] = await db.select().from(modelVersions).where(where);
  return row ? toRow(row) : undefined;
}

/** The version whose float onnx has this sha256 (its storage prefix), if any. */
export async function getModelVersionBySha256(
  db: DbOrTx,
  sha256: string,
): Promise<ModelVersionRow | undefined> {
  const [row] = await db.select().from(modelVersions).where(eq(modelVersions.sha256, sha256)).limit(1);
  return row ? toRow(row) : undefined;
}

export async function requireModelVersion(db: DbOrTx, idOrModelVersion: string): Promise<ModelVersionRow> {
  const row = await getModelVersion(db, idOrModelVersion);
  if (!row) throw new ModelRegistryError("not_found", `no model version ${idOrModelVersion}`);
  return row;
}

/**
 * Turns shadowing on (candidate or retired -> shadow) or off (shadow -> candidate). Asking for the state a
 * version is already in is a no-op; an active version cannot shadow (it already serves).
 */
export async function setShadow(db: DbOrTx, id: string, on: boolean): Promise<ModelVersionRow> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${REGISTRY_LOCK})`);
    const row = await requireModelVersion(tx, id);
    const target: ModelState = on ? "shadow" : "candidate";
    if (row.state === target || (!on && row.state !== "shadow")) return row;
    if (row.state === "active") {
      throw new ModelRegistryError("invalid_state", `${row.modelVersion} is active; roll it back first`);
    }
    return setModelState(tx, row.id, target);
  });
}

export async function setModelState(db: DbOrTx, id: string, state: ModelState): Promise<ModelVersionRow> {
  const [row] = await db
    .update(modelVersions)
    .set({ state, updatedAt: sql`now()` })
    .where(eq(modelVersions.id, id))
    .returning();
  if (!row) throw new ModelRegistryError("not_found", `no model version ${id}`);
  return toRow(row);
}

export async function listAssignments(db: DbOrTx): Promise<ModelAssignment[]> {
  return db.select().from(modelAssignments).orderBy(asc(modelAssignments.site));
}

/** Site (or '*') -> the version that serves it; what workers poll. Sites missing here use '*', then the default. */
export async function activeModelMap(db: DbOrTx): Promise<Map<string, ModelVersionRow>> {
  const rows = await db
    .select({ site: modelAssignments.site, version: modelVersions })
    .from(modelAssignments)
    .innerJoin(modelVersions, eq(modelVersions.id, modelAssignments.versionId));
  return new Map(rows.map((r) => [r.site, toRow(r.version)]));
}
