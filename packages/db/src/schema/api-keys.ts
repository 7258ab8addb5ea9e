import { sql } from "drizzle-orm";
import { check, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

/**
 * API keys managed with `garbage keys`. Only the sha256 of a key is kept: a leaked table (or backup) gives
 * nobody a working key, and the API looks keys up by the digest it computes anyway.
 */
export const apiKeys = pgTable(
  "api_keys",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    name: text("name").notNull(),
    /** Hex sha256 of the key. */
    keyHash: text("key_hash").notNull().unique("api_keys_key_hash_unique"),
    /** The sites the key may read and submit to; null means every site. */
    sites: text("sites").array(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
  },
  // An empty list would be a key that can do nothing, which is never what was meant.
  (t) => [check("api_keys_sites_check", sql`${t.sites} is null or cardinality(${t.sites}) > 0`)],
);
