import { fileURLToPath } from "node:url";
import { migrate as drizzleMigrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";
import type { Db } from "./client";

// From source this module is packages/db/src/migrate.ts and the migrations are packages/db/drizzle. Bundled
// (scripts/build.mjs) it is inlined into apps/api/dist/*.js, and the build copies the migrations to dist/drizzle.
export const MIGRATIONS_FOLDER = fileURLToPath(
  new URL(import.meta.url.endsWith(".ts") ? "../drizzle" : "./drizzle", import.meta.url),
);

// Arbitrary constant shared by every process that migrates this schema.
const MIGRATION_LOCK = 7_305_112_001;

/**
 * Applies the generated SQL migrations. A session advisory lock serialises concurrent callers (several API
 * and worker processes starting at once, parallel test runs) so they do not race on the journal table.
 */
export async function migrate(db: Db): Promise<void> {
  const lock = await db.$client.connect();
  try {
    await lock.query("select pg_advisory_lock($1)", [MIGRATION_LOCK]);
    await drizzleMigrate(db, { migrationsFolder: MIGRATIONS_FOLDER });
  } finally {
    await lock.query("select pg_advisory_unlock($1)", [MIGRATION_LOCK]).catch(() => {});
    lock.release();
  }
}

/** The database named in `url`, quoted, and a connected client of the server's `postgres` database. */
async function adminClient(url: string): Promise<{ name: string; quoted: string; client: pg.Client }> {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ""));
  if (!name) throw new Error(`database URL has no database name: ${url}`);
  const admin = new URL(url);
  admin.pathname = "/postgres";
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  return { name, quoted: `"${name.replaceAll('"', '""')}"`, client };
}

/** Creates the database named in `url` when it does not exist yet (dev and test convenience). */
export async function ensureDatabase(url: string): Promise<void> {
  const { name, quoted, client } = await adminClient(url);
  try {
    const found = await client.query("select 1 from pg_database where datname = $1", [name]);
    if (found.rowCount) return;
    await client.query(`create database ${quoted}`);
  } catch (err) {
    // 42P04 duplicate_database, 23505 when two creators race on pg_database's unique index.
    const code = (err as { code?: string }).code;
    if (code !== "42P04" && code !== "23505") throw err;
  } finally {
    await client.end();
  }
}

/** Drops the database named in `url`, disconnecting its sessions (test cleanup for scratch databases). */
export async function dropDatabase(url: string): Promise<void> {
  const { quoted, client } = await adminClient(url);
  try {
    await client.query(`drop database if exists ${quoted} with (force)`);
  } finally {
    await client.end();
  }
}
