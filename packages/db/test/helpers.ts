import { createDb, type DbHandle, ensureDatabase, migrate } from "../src/index";

export const TEST_DATABASE_URL =
  process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/garbage_test";

/** A migrated handle on the shared test database. Tests never truncate: others run against it concurrently. */
export async function openTestDb(): Promise<DbHandle> {
  await ensureDatabase(TEST_DATABASE_URL);
  const handle = createDb(TEST_DATABASE_URL);
  await migrate(handle.db);
  return handle;
}
