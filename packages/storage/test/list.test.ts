import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { createDb, type DbHandle, ensureDatabase, migrate } from "@garbage/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStore, FileStore, type ImageStore, parseUploadKey, uploadKey } from "../src/index";

const DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/garbage_test";

let handle: DbHandle;
let dir: string;
beforeAll(async () => {
  await ensureDatabase(DATABASE_URL);
  handle = createDb(DATABASE_URL, { max: 2 });
  await migrate(handle.db);
  dir = await mkdtemp(path.join(tmpdir(), "garbage-list-"));
});
afterAll(async () => {
  await handle?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const backends: [string, () => ImageStore][] = [
  ["file", () => createStore(pathToFileURL(dir).toString())],
  ["postgres", () => createStore("postgres", { db: handle.db })],
];

describe.each(backends)("%s store listing", (_kind, make) => {
  it("pages through a prefix in a stable key order, each key once, with write times", async () => {
    const store = make();
    // Its own folder: the table and the directory are shared with other tests.
    const prefix = `t-${randomUUID()}/`;
    const names = ["a/x", "a-b", "a/y/z", "a/y.1", "b", "a.c/d", "a_/e", "z/z/z/z"];
    const start = Date.now() - 1_000;
    for (const name of names) await store.put(prefix + name, Buffer.from(name));
    await store.put(`other-${randomUUID()}/a`, Buffer.from("outside"));

    const all = await store.list({ prefix, limit: 100 });
    expect(new Set(all.map((o) => o.key))).toEqual(new Set(names.map((n) => prefix + n)));
    expect(all).toHaveLength(names.length);
    for (const o of all) expect(o.createdAt.getTime()).toBeGreaterThanOrEqual(start);

    const paged: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await store.list({ prefix, after, limit: 3 });
      paged.push(...page.map((o) => o.key));
      if (page.length < 3) break;
      after = page.at(-1)?.key;
    }
    expect(paged).toEqual(all.map((o) => o.key));
    expect(await store.list({ prefix: `t-${randomUUID()}/`, limit: 10 })).toEqual([]);
  });

  it("refuses prefixes that are not folders", async () => {
    const store = make();
    for (const prefix of ["a", "../", "/abs/", ".tmp/"]) {
      await expect(store.list({ prefix, limit: 1 })).rejects.toMatchObject({ code: "invalid_key" });
    }
  });
});

describe("file store leftovers", () => {
  it("purges interrupted writes older than the cutoff and nothing else", async () => {
    const root = await mkdtemp(path.join(tmpdir(), "garbage-purge-"));
    try {
      const store = new FileStore(root);
      await store.put("kept/1", Buffer.from("x"));
      await mkdir(path.join(root, ".tmp"), { recursive: true });
      const old = path.join(root, ".tmp", "old.part");
      await writeFile(old, "half");
      const hourAgo = new Date(Date.now() - 3_600_000);
      await utimes(old, hourAgo, hourAgo);
      await utimes(path.join(root, "kept/1"), hourAgo, hourAgo);
      await writeFile(path.join(root, ".tmp", "fresh.part"), "half");

      expect(await store.purgeIncomplete(new Date(Date.now() - 60_000))).toBe(1);
      expect(await readdir(path.join(root, ".tmp"))).toEqual(["fresh.part"]);
      expect((await store.get("kept/1")).toString()).toBe("x");
      expect((await store.list({ prefix: "", limit: 10 })).map((o) => o.key)).toEqual(["kept/1"]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe("upload keys", () => {
  it("round-trip the ids and reject anything else", () => {
    const [batchId, imageId] = [randomUUID(), randomUUID()];
    expect(parseUploadKey(uploadKey(batchId, imageId))).toEqual({ batchId, imageId });
    for (const key of [
      "batches/x/y",
      `batches/${batchId}`,
      `batches/${batchId}/${imageId}/z`,
      `t/${batchId}/${imageId}`,
    ]) {
      expect(parseUploadKey(key)).toBeNull();
    }
  });
});
