import { fileURLToPath } from "node:url";
import type { DbOrTx } from "@garbage/db";
import { FileStore } from "./file-store";
import { PgStore } from "./pg-store";
import type { ImageStore } from "./store";

export {
  classFolder,
  type ExportEntry,
  type ExportOptions,
  extensionOf,
  reviewedEntries,
} from "./export-reviewed";
export { FileStore } from "./file-store";
export { PgStore } from "./pg-store";
export {
  assertValidKey,
  type ImageStore,
  type ListOptions,
  type PutData,
  type PutOptions,
  type PutResult,
  StorageError,
  type StorageErrorCode,
  type StoredObject,
} from "./store";
export { parseUploadKey, UPLOAD_PREFIX, uploadKey } from "./upload-keys";

/**
 * `file:///abs/dir` for a local directory (one host), `postgres` for the image_blobs table in the database
 * passed as `db` (several hosts).
 */
export function createStore(url: string, deps: { db?: DbOrTx } = {}): ImageStore {
  if (url.startsWith("file:")) return new FileStore(fileURLToPath(url));
  if (url === "postgres" || url === "postgres:") {
    if (!deps.db) throw new Error("STORAGE_URL=postgres needs a database handle");
    return new PgStore(deps.db);
  }
  throw new Error(`unsupported storage URL ${JSON.stringify(url)}: use file:///absolute/dir or postgres`);
}
