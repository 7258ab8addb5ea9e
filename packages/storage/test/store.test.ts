import { createHash, randomUUID } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { pathToFileURL } from "node:url";
import { createDb, type DbHandle, ensureDatabase, migrate } from "@garbage/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStore, FileStore, type ImageStore, PgStore, StorageError } from "../src/index";

const DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/garbage_test";

let handle: DbHandle;
let dir: string;
beforeAll(async () => {
  await ensureDatabase(DATABASE_URL);
  handle = createDb(DATABASE_URL, { max: 4 });
  await migrate(handle.db);
  dir = await mkdtemp(path.join(tmpdir(), "garbage-store-"));
});
afterAll(async () => {
  await handle?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

function slowStream(chunks: Buffer[], failAfter?: number): Readable {
  let i = 0;
  return new Readable({
    read() {
      if (failAfter !== undefined && i === failAfter) {
        this.destroy(new Error("client went away"));
        return;
      }
      const next = chunks[i++];
      this.push(next ?? null);
    },
  });
}

const backends: [string, () => ImageStore][] = [
  ["file", () => createStore(pathToFileURL(dir).toString())],
  ["postgres", () => createStore("postgres", { db: handle.db })],
];

describe.each(backends)("%s store", (kind, make) => {
  it("stores buffers and streams, reporting size and sha256 of what was stored", async () => {
    const store = make();
    expect(store.kind).toBe(kind);
    const data = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
    const key = `t/${randomUUID()}/a.jpg`;
    expect(await store.put(key, data)).toEqual({ bytes: data.length, sha256: sha(data) });
    expect(await store.get(key)).toEqual(data);

    const key2 = `t/${randomUUID()}`;
    const parts = [data.subarray(0, 10), data.subarray(10, 40_000), data.subarray(40_000)];
    expect(await store.put(key2, slowStream(parts))).toEqual({ bytes: data.length, sha256: sha(data) });
    expect((await store.get(key2)).equals(data)).toBe(true);

    // Overwriting replaces the object.
    await store.put(key2, Buffer.from("second"));
    expect((await store.get(key2)).toString()).toBe("second");
  });

  it("stores nothing when the source fails or exceeds maxBytes", async () => {
    const store = make();
    const key = `t/${randomUUID()}`;
    const chunk = Buffer.alloc(1024, 7);
    await expect(store.put(key, slowStream([chunk, chunk, chunk], 2))).rejects.toThrow("client went away");
    await expect(store.get(key)).rejects.toMatchObject({ code: "not_found" });
    const err = await store.put(key, slowStream([chunk, chunk, chunk]), { maxBytes: 2048 }).catch((e) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err.code).toBe("too_large");
    await expect(store.get(key)).rejects.toMatchObject({ code: "not_found" });
    expect(await store.put(key, chunk, { maxBytes: 1024 })).toMatchObject({ bytes: 1024 });
  });

  it("deletes idempotently and reports missing keys as not_found", async () => {
    const store = make();
    const key = `t/${randomUUID()}`;
    await store.put(key, Buffer.from("x"));
    await store.delete(key);
    await store.delete(key);
    const err = await store.get(key).catch((e) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err.code).toBe("not_found");
  });

  it("refuses keys that could escape the store", async () => {
    const store = make();
    for (const key of ["", "../etc/passwd", "a/../../b", "/abs", ".tmp/x", "a//b", "a\\b"]) {
      await expect(store.put(key, Buffer.from("x"))).rejects.toMatchObject({ code: "invalid_key" });
    }
  });

  it("is healthy", async () => {
    expect(await make().healthy()).toBe(true);
  });
});

describe("file store specifics", () => {
  it("leaves no temp files behind after failed writes", async () => {
    const root = await mkdtemp(path.join(tmpdir(), "garbage-store-"));
    try {
      const store = new FileStore(root);
      const chunk = Buffer.alloc(512, 1);
      await store.put("ok/1", chunk);
      await expect(store.put("bad/1", slowStream([chunk, chunk], 1))).rejects.toThrow();
      await expect(store.put("bad/2", chunk, { maxBytes: 10 })).rejects.toThrow();
      expect(await readdir(path.join(root, ".tmp"))).toEqual([]);
      expect(await readdir(path.join(root, "ok"))).toEqual(["1"]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it("is unhealthy when its directory cannot be created", async () => {
    const blocker = path.join(dir, `file-${randomUUID()}`);
    await writeFile(blocker, "not a directory");
    expect(await new FileStore(path.join(blocker, "store")).healthy()).toBe(false);
  });

  it("rejects unknown URLs and relative roots", () => {
    expect(() => createStore("s3://bucket")).toThrow(/unsupported/);
    expect(() => createStore("postgres")).toThrow(/database/);
    expect(() => new FileStore("relative/dir")).toThrow(/absolute/);
    expect(createStore("postgres", { db: handle.db })).toBeInstanceOf(PgStore);
  });
});
