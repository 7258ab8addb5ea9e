import { createHash } from "node:crypto";
import type { Readable } from "node:stream";

export interface PutResult {
  bytes: number;
  /** Hex sha256 of exactly the bytes stored. */
  sha256: string;
}

export interface PutOptions {
  /** Abort (storing nothing) once more than this many bytes arrive. */
  maxBytes?: number;
}

export type PutData = Readable | Buffer | Uint8Array | AsyncIterable<Uint8Array>;

export interface StoredObject {
  key: string;
  /** When the object was last written (file mtime, row created_at). */
  createdAt: Date;
}

export interface ListOptions {
  /** "" or a folder ending in "/" (a file store cannot list arbitrary prefixes cheaply). */
  prefix: string;
  /** Continue after this key, the last one of the previous page. */
  after?: string;
  limit: number;
}

/**
 * Where uploaded images live between the API and the worker. `put` is all-or-nothing: a reader never sees a
 * partially written object, and a failed put leaves nothing behind under the key.
 */
export interface ImageStore {
  readonly kind: "file" | "postgres";
  put(key: string, data: PutData, options?: PutOptions): Promise<PutResult>;
  /** Throws StorageError with code "not_found" for a missing key. */
  get(key: string): Promise<Buffer>;
  /** Deleting a missing key is not an error, so cleanup can be retried blindly. */
  delete(key: string): Promise<void>;
  healthy(): Promise<boolean>;
  /** One page of objects under a prefix, in the store's key order, for the orphan sweep. */
  list(options: ListOptions): Promise<StoredObject[]>;
  /** Removes what writes interrupted before `before` left behind (a crash mid-put); returns how many. */
  purgeIncomplete(before: Date): Promise<number>;
}

export type StorageErrorCode = "not_found" | "too_large" | "invalid_key";

export class StorageError extends Error {
  override name = "StorageError";
  constructor(
    readonly code: StorageErrorCode,
    message: string,
  ) {
    super(message);
  }
}

// Keys become file paths in the file backend: no "..", no absolute paths, no hidden segments.
const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

export function assertValidKey(key: string): void {
  const segments = key.split("/");
  if (key.length === 0 || key.length > 512 || !segments.every((s) => SEGMENT.test(s) && s !== "..")) {
    throw new StorageError("invalid_key", `invalid storage key: ${JSON.stringify(key)}`);
  }
}

export function isValidKey(key: string): boolean {
  try {
    assertValidKey(key);
    return true;
  } catch {
    return false;
  }
}

export function assertValidPrefix(prefix: string): void {
  if (prefix !== "" && !(prefix.endsWith("/") && isValidKey(prefix.slice(0, -1)))) {
    throw new StorageError(
      "invalid_key",
      `invalid prefix (a folder ending in "/"): ${JSON.stringify(prefix)}`,
    );
  }
}

/** Streams `data` through `sink`, hashing and counting on the way and enforcing maxBytes. */
export async function consume(
  data: PutData,
  options: PutOptions,
  sink: (chunk: Buffer) => Promise<void> | void,
): Promise<PutResult> {
  const hash = createHash("sha256");
  let bytes = 0;
  const chunks: AsyncIterable<Uint8Array> | Uint8Array[] = data instanceof Uint8Array ? [data] : data;
  for await (const raw of chunks) {
    const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    bytes += chunk.length;
    if (options.maxBytes !== undefined && bytes > options.maxBytes) {
      throw new StorageError("too_large", `object exceeds ${options.maxBytes} bytes`);
    }
    hash.update(chunk);
    await sink(chunk);
  }
  return { bytes, sha256: hash.digest("hex") };
}
