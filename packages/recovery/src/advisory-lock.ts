import type { Db } from "@garbage/db";

type Pool = Db["$client"];

/**
 * Runs `fn` while this process holds a session advisory lock on one dedicated connection, so only one caller
 * across all processes and hosts runs it at a time. Resolves undefined at once when someone else holds the
 * lock. If the process dies, Postgres drops the lock with the connection.
 */
export async function withAdvisoryLock<T>(
  pool: Pool,
  key: number,
  fn: () => Promise<T>,
): Promise<T | undefined> {
  const client = await pool.connect();
  let healthy = true;
  const query = async (text: string) => {
    try {
      return await client.query<{ locked: boolean }>(text, [key]);
    } catch (err) {
      healthy = false;
      throw err;
    }
  };
  try {
    const { rows } = await query("select pg_try_advisory_lock($1) as locked");
    if (!rows[0]?.locked) return undefined;
    try {
      return await fn();
    } finally {
      await query("select pg_advisory_unlock($1)").catch(() => {});
    }
  } finally {
    // A connection we could not unlock on must not go back to the pool still holding the lock.
    client.release(!healthy);
  }
}
