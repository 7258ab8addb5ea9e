import { type DbOrTx, deleteBlob, getBlob, listBlobs, pingDb, putBlob } from "@garbage/db";
import {
  assertValidKey,
  assertValidPrefix,
  consume,
  type ImageStore,
  type ListOptions,
  type PutData,
  type PutOptions,
  type PutResult,
  StorageError,
  type StoredObject,
} from "./store";

/**
 * Images as bytea rows in the application database, so several API and worker hosts share them without a
 * shared filesystem. Each object is buffered once (bounded by maxBytes) because a bytea parameter is one value.
 * The insert is a single statement, hence atomic.
 */
export class PgStore implements ImageStore {
  readonly kind = "postgres";

  constructor(private readonly db: DbOrTx) {}

  async put(key: string, data: PutData, options: PutOptions = {}): Promise<PutResult> {
    assertValidKey(key);
    const chunks: Buffer[] = [];
    const result = await consume(data, options, (chunk) => {
      chunks.push(chunk);
    });
    await putBlob(this.db, {
      key,
      data: Buffer.concat(chunks, result.bytes),
      bytes: result.bytes,
      sha256: result.sha256,
    });
    return result;
  }

  async get(key: string): Promise<Buffer> {
    assertValidKey(key);
    const data = await getBlob(this.db, key);
    if (!data) throw new StorageError("not_found", `no object ${key}`);
    return data;
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    await deleteBlob(this.db, key);
  }

  async healthy(): Promise<boolean> {
    return pingDb(this.db);
  }

  async list(options: ListOptions): Promise<StoredObject[]> {
    assertValidPrefix(options.prefix);
    return listBlobs(this.db, options);
  }

  /** A put is one INSERT: an interrupted one leaves nothing behind. */
  async purgeIncomplete(): Promise<number> {
    return 0;
  }
}
