import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { createDb, type DbHandle, ensureDatabase, getModelVersion, migrate } from "@garbage/db";
import { loadClassifier, manifestPathFor } from "@garbage/inference";
import { createStore, type ImageStore } from "@garbage/storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fetchModelFiles, publishModel } from "../src/index";
import { writeTinySiteModel } from "../src/testing";

const DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/garbage_test";

let db: DbHandle;
let dir: string;
let store: ImageStore;
const created: string[] = [];

beforeAll(async () => {
  await ensureDatabase(DATABASE_URL);
  db = createDb(DATABASE_URL, { max: 2 });
  await migrate(db.db);
  dir = await mkdtemp(path.join(tmpdir(), "garbage-models-"));
  store = createStore(pathToFileURL(path.join(dir, "store")).href);
});
afterAll(async () => {
  if (created.length) await db.pool.query("delete from model_versions where id = any($1)", [created]);
  await db?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function fixture(o: { int8?: boolean; sites?: string[] | null } = {}) {
  const out = await mkdtemp(path.join(dir, "model-"));
  const name = `site-${randomBytes(4).toString("hex")}`;
  return writeTinySiteModel(out, { name, sites: o.sites ?? [`plant-${randomUUID()}`], ...o });
}

describe("publishModel", () => {
  it("stores every file under models/<sha256>/ and registers the version from its manifests", async () => {
    const m = await fixture();
    const row = await publishModel({ db: db.db, store, modelPath: m.modelPath, by: "test" });
    created.push(row.id);
    const manifest = JSON.parse(await readFile(manifestPathFor(m.modelPath), "utf8"));
    expect(row).toMatchObject({
      modelVersion: `${m.name}@1`,
      sha256: manifest.sha256,
      state: "candidate",
      sites: manifest.site.sites,
      trainedOn: { sites: manifest.site.sites, images: 12, perClass: { glass: 6, metal: 6 }, source: "test" },
      metrics: [{ dataset: "site-cv", n: 12, accuracy: 0.9, macroF1: 0.88 }],
      createdBy: "test",
    });
    expect(row.dataUntil?.toISOString()).toBe("2026-01-01T00:00:00.000Z");
    expect((row.int8Manifest as { name: string }).name).toBe(`${m.name}-int8`);
    expect(row.files.map((f) => [f.role, f.key]).sort()).toEqual(
      [
        ["fp32", `models/${row.sha256}/${m.name}.onnx`],
        ["manifest", `models/${row.sha256}/${m.name}.json`],
        ["reference", `models/${row.sha256}/${m.name}.references.bin`],
        ["int8", `models/${row.sha256}/${m.name}-int8.onnx`],
        ["int8-manifest", `models/${row.sha256}/${m.name}-int8.json`],
      ].sort(),
    );
    for (const f of row.files) expect((await store.get(f.key)).length).toBe(f.bytes);
    expect((await getModelVersion(db.db, row.modelVersion))?.id).toBe(row.id);

    await expect(publishModel({ db: db.db, store, modelPath: m.modelPath, by: "t" })).rejects.toMatchObject({
      code: "duplicate",
    });
  });

  it("takes an explicit scope ('*' = every site) and refuses files that differ from their manifest", async () => {
    const m = await fixture({ int8: false });
    const row = await publishModel({ db: db.db, store, modelPath: m.modelPath, sites: ["*"], by: null });
    created.push(row.id);
    expect(row.sites).toBeNull();
    expect(row.int8Manifest).toBeNull();

    const bad = await fixture();
    await writeFile(bad.modelPath.replace(/\.onnx$/, "-int8.onnx"), "not the model");
    await expect(
      publishModel({ db: db.db, store, modelPath: bad.modelPath, by: null }),
    ).rejects.toMatchObject({
      name: "ModelFilesError",
      code: "checksum",
    });
    await expect(
      publishModel({ db: db.db, store, modelPath: path.join(dir, "missing.onnx"), by: null }),
    ).rejects.toMatchObject({ code: "invalid" });
  });
});

describe("fetchModelFiles", () => {
  it("materialises the int8 or float flavour, loadable, reusing and repairing the cache", async () => {
    const m = await fixture();
    const row = await publishModel({ db: db.db, store, modelPath: m.modelPath, by: "test" });
    created.push(row.id);
    const cacheDir = path.join(dir, "cache");

    const int8 = await fetchModelFiles({ store, version: row, cacheDir, prefer: "int8" });
    expect(int8).toBe(path.join(cacheDir, row.sha256, `${m.name}-int8.onnx`));
    const clf = await loadClassifier({ model: int8, verifyChecksum: true, threads: 1 });
    expect(clf.manifest.name).toBe(`${m.name}-int8`);
    expect(clf.manifest.review?.reference).toBeDefined();
    await clf.close();

    const fp32 = await fetchModelFiles({ store, version: row, cacheDir, prefer: "fp32" });
    expect(fp32).toBe(path.join(cacheDir, row.sha256, `${m.name}.onnx`));
    const before = (await stat(fp32)).mtimeMs;
    await new Promise((r) => setTimeout(r, 20));
    await fetchModelFiles({ store, version: row, cacheDir, prefer: "fp32" });
    expect((await stat(fp32)).mtimeMs).toBe(before);

    // A damaged cached file is replaced by the stored one.
    await writeFile(fp32, "damaged");
    await fetchModelFiles({ store, version: row, cacheDir, prefer: "fp32" });
    const again = await loadClassifier({ model: fp32, verifyChecksum: true, threads: 1 });
    await again.close();
  });

  it("falls back to fp32 without an int8 twin and refuses stored bytes that differ from the registry", async () => {
    const m = await fixture({ int8: false });
    const row = await publishModel({ db: db.db, store, modelPath: m.modelPath, by: "test" });
    created.push(row.id);
    const cacheDir = path.join(dir, "cache2");
    expect(await fetchModelFiles({ store, version: row, cacheDir, prefer: "int8" })).toMatch(
      /site-[0-9a-f]+\.onnx$/,
    );

    const fp32 = row.files.find((f) => f.role === "fp32");
    if (!fp32) throw new Error("no fp32 file");
    await store.put(fp32.key, Buffer.from("tampered"));
    await expect(
      fetchModelFiles({ store, version: row, cacheDir: path.join(dir, "cache3"), prefer: "fp32" }),
    ).rejects.toMatchObject({ code: "checksum" });
  });
});
