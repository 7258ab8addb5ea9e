import { createHash, randomBytes } from "node:crypto";
import { and, asc, eq, isNull, sql } from "drizzle-orm";
import type { DbOrTx } from "./client";
import { apiKeys } from "./schema/api-keys";

export type ApiKey = Omit<typeof apiKeys.$inferSelect, "keyHash">;

/** Hex sha256: what the table stores and what the API looks a presented key up by. */
export const hashApiKey = (key: string) => createHash("sha256").update(key).digest("hex");

/** 32 random bytes; the prefix makes a leaked key easy to recognise in logs and secret scanners. */
export const generateApiKey = () => `gsk_${randomBytes(32).toString("base64url")}`;

function normaliseSites(sites: readonly string[] | null | undefined): string[] | null {
  if (sites == null) return null;
  const clean = [...new Set(sites.map((s) => s.trim()).filter((s) => s.length > 0))];
  if (clean.length === 0)
    throw new TypeError("sites must name at least one site (or be null for every site)");
  return clean;
}

/** Creates a key and returns it with its plain value, which exists nowhere else afterwards. */
export async function createApiKey(
  db: DbOrTx,
  input: { name: string; sites?: readonly string[] | null },
): Promise<ApiKey & { key: string }> {
  const name = input.name.trim();
  if (name.length === 0) throw new TypeError("a key needs a name");
  const key = generateApiKey();
  const [row] = await db
    .insert(apiKeys)
    .values({ name, keyHash: hashApiKey(key), sites: normaliseSites(input.sites) })
    .returning();
  if (!row) throw new Error("insert returned no row");
  const { keyHash: _hash, ...rest } = row;
  return { ...rest, key };
}

const publicColumns = {
  id: apiKeys.id,
  name: apiKeys.name,
  sites: apiKeys.sites,
  createdAt: apiKeys.createdAt,
  revokedAt: apiKeys.revokedAt,
};

export async function listApiKeys(db: DbOrTx): Promise<ApiKey[]> {
  return db.select(publicColumns).from(apiKeys).orderBy(asc(apiKeys.createdAt), asc(apiKeys.id));
}

/** True when the key was active and is now revoked; revoking twice keeps the first time. */
export async function revokeApiKey(db: DbOrTx, id: string): Promise<boolean> {
  const rows = await db
    .update(apiKeys)
    .set({ revokedAt: sql`now()` })
    .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
    .returning({ id: apiKeys.id });
  return rows.length > 0;
}

/** The active (not revoked) key with this hex sha256, if any. */
export async function findActiveApiKey(db: DbOrTx, keyHash: string): Promise<ApiKey | null> {
  const [row] = await db
    .select(publicColumns)
    .from(apiKeys)
    .where(and(eq(apiKeys.keyHash, keyHash), isNull(apiKeys.revokedAt)));
  return row ?? null;
}

/** Whether the key with this id exists and is not revoked. */
export async function isApiKeyActive(db: DbOrTx, id: string): Promise<boolean> {
  const [row] = await db
    .select({ id: apiKeys.id })
    .from(apiKeys)
    .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)));
  return row !== undefined;
}

/**
 * Whether a key was ever created, revoked ones included: the API is open only while there is none here and
 * none in API_KEYS, and revoking the last key must not open it.
 */
export async function hasApiKeys(db: DbOrTx): Promise<boolean> {
  const [row] = await db.select({ id: apiKeys.id }).from(apiKeys).limit(1);
  return row !== undefined;
}
