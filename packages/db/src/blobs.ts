import { eq, sql } from "drizzle-orm";
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
