import { randomUUID } from "node:crypto";
import { constants } from "node:fs";
import { access, mkdir, open, readFile, rename, rm } from "node:fs/promises";
import path from "node:path";
import {
  assertValidKey,
  consume,
  type ImageStore,
  type PutData,
  type PutOptions,
  type PutResult,
  StorageError,
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
