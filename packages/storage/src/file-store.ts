import { randomUUID } from "node:crypto";
import type { Dirent } from "node:fs";
import { constants } from "node:fs";
import { access, mkdir, open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import {
  assertValidKey,
  assertValidPrefix,
  consume,
  type ImageStore,
  isValidKey,
  type ListOptions,
  type PutData,
  type PutOptions,
  type PutResult,
  StorageError,
  type StoredObject,
} from "./store";

/**
 * One directory on one host. Writes go to `<root>/.tmp/` (same filesystem, so rename is atomic), are fsynced,
 * then renamed into place: a crash or a failed upload never leaves a half-written file under a real key.
 */
export class FileStore implements ImageStore {
  readonly kind = "file";
  private readonly tmpDir: string;

  constructor(readonly root: string) {
    if (!path.isAbsolute(root)) throw new Error(`file store root must be absolute: ${root}`);
    this.tmpDir = path.join(root, ".tmp");
  }

  private pathFor(key: string): string {
    assertValidKey(key);
    return path.join(this.root, key);
  }

  async put(key: string, data: PutData, options: PutOptions = {}): Promise<PutResult> {
    const target = this.pathFor(key);
    await mkdir(this.tmpDir, { recursive: true });
    await mkdir(path.dirname(target), { recursive: true });
    const tmp = path.join(this.tmpDir, `${randomUUID()}.part`);
    const file = await open(tmp, "wx");
    let result: PutResult;
    try {
      result = await consume(data, options, async (chunk) => {
        await file.write(chunk);
      });
      await file.sync();
    } catch (err) {
      await file.close().catch(() => {});
      await rm(tmp, { force: true });
      throw err;
    }
    await file.close();
    try {
      await rename(tmp, target);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    await syncDir(path.dirname(target));
    return result;
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await readFile(this.pathFor(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT")
        throw new StorageError("not_found", `no object ${key}`);
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathFor(key), { force: true });
  }

  async healthy(): Promise<boolean> {
    try {
      await mkdir(this.tmpDir, { recursive: true });
      await access(this.tmpDir, constants.W_OK);
      return true;
    } catch {
      return false;
    }
  }

  async list(options: ListOptions): Promise<StoredObject[]> {
    assertValidPrefix(options.prefix);
    const found: StoredObject[] = [];
    await this.walk(options.prefix, options, found);
    return found;
  }

  /** `.part` files are only ever half-written uploads: a finished put renames its file away. */
  async purgeIncomplete(before: Date): Promise<number> {
    const names = await readdir(this.tmpDir).catch(() => [] as string[]);
    let removed = 0;
    for (const name of names) {
      const file = path.join(this.tmpDir, name);
      const info = await stat(file).catch(() => null);
      if (!info?.isFile() || info.mtime >= before) continue;
      await rm(file, { force: true });
      removed += 1;
    }
    return removed;
  }

  /** Depth-first in key order, skipping whole folders that lie before `after`, until `limit` objects are found. */
  private async walk(folder: string, options: ListOptions, found: StoredObject[]): Promise<void> {
    const { after, limit } = options;
    let entries: Dirent[];
    try {
      entries = await readdir(path.join(this.root, folder), { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    // A folder sorts as its name plus "/", so siblings such as "a/x" and "a-b" come out in key order; names
    // that cannot be keys (".tmp", hidden files) are not objects.
    const sorted = entries
      .filter((e) => isValidKey(folder + e.name))
      .map((e) => ({ entry: e, key: folder + e.name + (e.isDirectory() ? "/" : "") }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const { entry, key } of sorted) {
      if (found.length >= limit) return;
      if (entry.isDirectory()) {
        // Every key in the folder starts with `key`; all of them are <= after exactly when this holds.
        if (after !== undefined && after > key && !after.startsWith(key)) continue;
        await this.walk(key, options, found);
      } else if (entry.isFile() && (after === undefined || key > after)) {
        // Deleted since readdir: not an object any more.
        const info = await stat(path.join(this.root, key)).catch(() => null);
        if (info) found.push({ key, createdAt: info.mtime });
      }
    }
  }
}

// The rename is only durable once the directory entry is on disk.
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r").catch(() => null);
  if (!handle) return;
  try {
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the file itself is already synced.
  } finally {
    await handle.close();
  }
}
