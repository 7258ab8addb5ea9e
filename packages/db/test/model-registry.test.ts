import { randomBytes, randomUUID } from "node:crypto";
import { inArray } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  activeModelMap,
  createDb,
  type DbHandle,
  type DbOrTx,
  dropDatabase,
  ensureDatabase,
  getModelVersion,
  insertModelVersion,
  listAssignments,
  listModelVersions,
  migrate,
  modelAssignments,
  modelVersions,
  promoteModelVersion,
  rollbackSites,
  setShadow,
} from "../src/index";
import { openTestDb, TEST_DATABASE_URL } from "./helpers";

let handle: DbHandle;
const created: string[] = [];
const sitesUsed: string[] = [];
beforeAll(async () => {
  handle = await openTestDb();
});
afterAll(async () => {
  // Assignments are global: leave none of ours behind for other suites' workers to resolve.
  if (sitesUsed.length) {
    await handle.db.delete(modelAssignments).where(inArray(modelAssignments.site, sitesUsed));
  }
  if (created.length) await handle.db.delete(modelVersions).where(inArray(modelVersions.id, created));
  await handle?.close();
});

async function add(db: DbOrTx, sites: string[] | null, name = `reg-${randomUUID()}`) {
  const sha256 = randomBytes(32).toString("hex");
  const row = await insertModelVersion(db, {
    name,
    version: "1",
    sha256,
    sites,
    manifest: { name, version: "1" },
    files: [{ role: "fp32", key: `models/${sha256}/m.onnx`, sha256, bytes: 3 }],
    createdBy: "test",
  });
  created.push(row.id);
  return row;
}

const state = async (db: DbOrTx, id: string) => (await getModelVersion(db, id))?.state;

describe("model registry", () => {
  it("registers, finds by id or name@version and refuses a duplicate name@version", async () => {
    const v = await add(handle.db, null);
    expect(v).toMatchObject({ state: "candidate", modelVersion: `${v.name}@1`, sites: null });
    expect((await getModelVersion(handle.db, v.modelVersion))?.id).toBe(v.id);
    expect((await getModelVersion(handle.db, v.id))?.modelVersion).toBe(v.modelVersion);
    expect(await getModelVersion(handle.db, "nope")).toBeUndefined();
    await expect(add(handle.db, null, v.name)).rejects.toMatchObject({ code: "duplicate" });
    const ids = (await listModelVersions(handle.db, { states: ["candidate"] })).map((r) => r.id);
    expect(ids).toContain(v.id);
  });

  it("shadows a candidate and stops; an active version cannot shadow", async () => {
    const site = `reg-site-${randomUUID()}`;
    sitesUsed.push(site);
    const v = await add(handle.db, [site]);
    expect((await setShadow(handle.db, v.id, true)).state).toBe("shadow");
    expect((await setShadow(handle.db, v.id, false)).state).toBe("candidate");
    await setShadow(handle.db, v.id, true);
    await promoteModelVersion(handle.db, v.id, { by: "test" });
    expect(await state(handle.db, v.id)).toBe("active");
    await expect(setShadow(handle.db, v.id, true)).rejects.toMatchObject({ code: "invalid_state" });
  });

  it("promotes for one site while another keeps its version, and rollback restores the previous one", async () => {
    const [a, b] = [`reg-a-${randomUUID()}`, `reg-b-${randomUUID()}`];
    sitesUsed.push(a, b);
    const old = await add(handle.db, [a, b]);
    const next = await add(handle.db, [a, b]);
    await promoteModelVersion(handle.db, old.id, { by: "test" });
    const outcome = await promoteModelVersion(handle.db, next.id, { sites: [a], by: "ada" });
    expect(outcome.changes).toEqual([{ site: a, from: { id: old.id, modelVersion: old.modelVersion } }]);
    expect(outcome.retired).toEqual([]);
    let map = await activeModelMap(handle.db);
    expect(map.get(a)?.id).toBe(next.id);
    expect(map.get(b)?.id).toBe(old.id);
    expect(await state(handle.db, old.id)).toBe("active");

    // Moving b too leaves old without a site: retired.
    const all = await promoteModelVersion(handle.db, next.id, { sites: [b], by: "ada" });
    expect(all.retired).toEqual([{ id: old.id, modelVersion: old.modelVersion }]);
    await expect(
      promoteModelVersion(handle.db, next.id, { sites: ["elsewhere"], by: "ada" }),
    ).rejects.toMatchObject({ code: "out_of_scope" });

    const back = await rollbackSites(handle.db, { sites: [a, b], by: "ada" });
    expect(back.changes.map((c) => [c.site, c.from.id, c.to?.id]).sort()).toEqual(
      [
        [a, next.id, old.id],
        [b, next.id, old.id],
      ].sort(),
    );
    expect(back.retired.map((r) => r.id)).toEqual([next.id]);
    expect(await state(handle.db, old.id)).toBe("active");
    map = await activeModelMap(handle.db);
    expect(map.get(a)?.id).toBe(old.id);
    const rows = (await listAssignments(handle.db)).filter((r) => r.site === a);
    expect(rows).toMatchObject([{ versionId: old.id, previousVersionId: null, assignedBy: "ada" }]);

    // One more rollback removes the rows: the sites fall back to '*' or the default.
    await rollbackSites(handle.db, { sites: [a, b], by: "ada" });
    map = await activeModelMap(handle.db);
    expect(map.has(a) || map.has(b)).toBe(false);
    expect(await state(handle.db, old.id)).toBe("retired");
    await expect(rollbackSites(handle.db, { sites: [a], by: "ada" })).rejects.toMatchObject({
      code: "not_assigned",
    });
  });

  it("serves every site through '*' and rolls it back (scratch database: '*' is global)", async () => {
    const url = new URL(TEST_DATABASE_URL);
    url.pathname = `/garbage_registry_${randomUUID().replaceAll("-", "")}`;
    await ensureDatabase(url.href);
    const scratch = createDb(url.href, { max: 2 });
    try {
      await migrate(scratch.db);
      const global = await add(scratch.db, null);
      const site = await add(scratch.db, ["plant-1"]);
      expect((await promoteModelVersion(scratch.db, global.id, { by: "t" })).changes).toEqual([
        { site: "*", from: null },
      ]);
      await expect(promoteModelVersion(scratch.db, site.id, { sites: ["*"], by: "t" })).rejects.toMatchObject(
        { code: "out_of_scope" },
      );
      await promoteModelVersion(scratch.db, site.id, { by: "t" });
      const map = await activeModelMap(scratch.db);
      expect([...map].map(([s, v]) => [s, v.id]).sort()).toEqual(
        [
          ["*", global.id],
          ["plant-1", site.id],
        ].sort(),
      );
      // plant-1 had no row of its own, so its rollback deletes it and '*' serves it again.
      expect((await rollbackSites(scratch.db, { sites: ["plant-1"], by: "t" })).changes).toMatchObject([
        { site: "plant-1", to: null },
      ]);
      expect(await state(scratch.db, site.id)).toBe("retired");
      await rollbackSites(scratch.db, { sites: ["*"], by: "t" });
      expect((await activeModelMap(scratch.db)).size).toBe(0);
      expect(await state(scratch.db, global.id)).toBe("retired");
    } finally {
      await scratch.close();
      await dropDatabase(url.href);
    }
  });
});
