import { type DbOrTx, type ModelVersionRow, recordShadowResults, type ShadowResultInput } from "@garbage/db";
import type { BatchClassification } from "@garbage/inference";
import type { ImageStore } from "@garbage/storage";
import { sql } from "drizzle-orm";
import type { ServedVersion } from "./model-pool";
import { versionOf } from "./model-routes";

export interface BackfillDeps {
  db: DbOrTx;
  store: Pick<ImageStore, "get">;
  /** Classifies with a version, loading it if need be. */
  classify: (version: ServedVersion, images: Uint8Array[]) => Promise<BatchClassification | undefined>;
  batchSize: number;
}

interface Candidate {
  image_id: string;
  storage_key: string;
  needs_candidate: boolean;
  /** The version serving the image's site, when it has no prediction for the image yet. */
  active_id: string | null;
}

/**
 * Reviewed images a shadow version has no prediction for yet, or whose site's active (registered) version has
 * none and did not label the result either: exactly what compareVersions needs to count an image. Newest
 * reviews first; images whose bytes are gone are skipped by id.
 */
async function pending(db: DbOrTx, version: ModelVersionRow, limit: number, skip: readonly string[]) {
  // Bound as arrays: drizzle would spread a bare JS array into a parenthesised list.
  const sites = sql.param(version.sites);
  const res = await db.execute<Candidate & Record<string, unknown>>(sql`
    select image_id, storage_key, needs_candidate, case when needs_active then active_id end as active_id
    from (
      select i.id as image_id, i.storage_key, rv.reviewed_at, act.version_id as active_id,
        not exists (select 1 from shadow_results s where s.image_id = i.id and s.version_id = ${version.id})
          as needs_candidate,
        act.version_id is not null and act.version_id <> ${version.id}
          and r.model_version is distinct from act.version_string
          and not exists (select 1 from shadow_results s where s.image_id = i.id and s.version_id = act.version_id)
          as needs_active
      from reviews rv
      join images i on i.id = rv.image_id
      join results r on r.image_id = i.id and r.status = 'ok'
      left join lateral (
        select a.version_id, m.name || '@' || m.version as version_string
        from model_assignments a join model_versions m on m.id = a.version_id
        where a.site = i.site or a.site = '*' order by a.site = '*' limit 1
      ) act on true
      where i.storage_key is not null
        and (${sites}::text[] is null or i.site = any(${sites}::text[]))
        and (${version.dataUntil}::timestamptz is null or rv.reviewed_at > ${version.dataUntil}::timestamptz)
        and i.id <> all(${sql.param(skip)}::uuid[])
    ) q
    where needs_candidate or needs_active
    order by reviewed_at desc
    limit ${limit}`);
  return res.rows;
}

export interface BackfillOutcome {
  /** Images looked at (what the pass's budget counts). */
  images: number;
  candidate: number;
  active: number;
  /** Images that cannot be classified (bytes gone, undecodable): the caller skips them from then on. */
  skip: string[];
}

/**
 * One bounded backfill step for one shadow version: classifies up to `limit` reviewed images in its scope,
 * reviewed after its data cut-off, with the version and, where the result was labelled by another version than
 * the one serving the site now, with that one too; stored as shadow rows with source 'reviewed'.
 */
export async function backfillVersion(
  deps: BackfillDeps,
  version: ModelVersionRow,
  active: ReadonlyMap<string, ModelVersionRow>,
  options: { limit: number; skip: readonly string[] },
): Promise<BackfillOutcome> {
  const rows = await pending(deps.db, version, options.limit, options.skip);
  const outcome: BackfillOutcome = { images: rows.length, candidate: 0, active: 0, skip: [] };
  const bytes = new Map<string, Uint8Array>();
  for (const row of rows) {
    try {
      bytes.set(row.image_id, await deps.store.get(row.storage_key));
    } catch {
      // Not found or unreadable: shadow work never retries an image forever.
      outcome.skip.push(row.image_id);
    }
  }
  const present = rows.filter((r) => bytes.has(r.image_id));
  const groups = new Map<string, { row: ModelVersionRow; ids: string[] }>();
  const add = (row: ModelVersionRow, id: string) => {
    const group = groups.get(row.id) ?? { row, ids: [] };
    group.ids.push(id);
    groups.set(row.id, group);
  };
  for (const r of present) {
    if (r.needs_candidate) add(version, r.image_id);
    // Looked up in the caller's fresh map; a version assigned since the query is picked up next pass.
    const act = r.active_id ? [...active.values()].find((v) => v.id === r.active_id) : undefined;
    if (act) add(act, r.image_id);
  }
  for (const { row, ids } of groups.values()) {
    for (let i = 0; i < ids.length; i += deps.batchSize) {
      const chunk = ids.slice(i, i + deps.batchSize);
      // Copies (not Buffer views): the model thread takes over (detaches) what it is given, and an image may
      // go to two versions.
      const classified = await deps.classify(
        versionOf(row),
        chunk.map((id) => new Uint8Array(bytes.get(id) as Uint8Array)),
      );
      if (!classified) continue;
      const shadowRows = chunk.flatMap((imageId, k): ShadowResultInput[] => {
        const o = classified.outcomes[k];
        if (!o?.ok) {
          outcome.skip.push(imageId);
          return [];
        }
        const { label, confidence, top, review } = o;
        return [{ imageId, versionId: row.id, source: "reviewed", label, confidence, top, review }];
      });
      await recordShadowResults(deps.db, shadowRows);
      if (row.id === version.id) outcome.candidate += shadowRows.length;
      else outcome.active += shadowRows.length;
    }
  }
  return outcome;
}
