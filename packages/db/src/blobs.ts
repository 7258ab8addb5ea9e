import { and, asc, eq, gt, type SQL, sql } from "drizzle-orm";
import type { DbOrTx } from "./client";
import { imageBlobs } from "./schema/image-blobs";

export type ImageBlob = typeof imageBlobs.$inferInsert;

/** Single statement, so an object is either fully stored or not at all; a second put replaces it. */
export async function putBlob(db: DbOrTx, blob: Omit<ImageBlob, "createdAt">): Promise<void> {
  await db
    .insert(imageBlobs)
    .values(blob)
    .onConflictDoUpdate({
      target: imageBlobs.key,
      set: { data: blob.data, bytes: blob.bytes, sha256: blob.sha256, createdAt: sql`now()` },
    });
}

export async function getBlob(db: DbOrTx, key: string): Promise<Buffer | null> {
  const [row] = await db.select({ data: imageBlobs.data }).from(imageBlobs).where(eq(imageBlobs.key, key));
  return row?.data ?? null;
}

export async function deleteBlob(db: DbOrTx, key: string): Promise<void> {
  await db.delete(imageBlobs).where(eq(imageBlobs.key, key));
}

export interface BlobListing {
  key: string;
  createdAt: Date;
}

/** Keys starting with `prefix`, in key order after `after`; walks the primary key, never the bytes. */
export async function listBlobs(
  db: DbOrTx,
  options: { prefix: string; after?: string; limit: number },
): Promise<BlobListing[]> {
  const filters: SQL[] = [sql`starts_with(${imageBlobs.key}, ${options.prefix})`];
  if (options.after !== undefined) filters.push(gt(imageBlobs.key, options.after));
  return db
    .select({ key: imageBlobs.key, createdAt: imageBlobs.createdAt })
    .from(imageBlobs)
    .where(and(...filters))
    .orderBy(asc(imageBlobs.key))
    .limit(options.limit);
}
