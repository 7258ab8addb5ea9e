import type { Redis } from "@garbage/queue";

/** A connected client: BullMQ's `queue.client` waits for the connection, where a bare ioredis one would fail. */
type Client = Pick<Redis, "info" | "set">;

/**
 * Tells when Redis has lost what it held since the last look: a different `run_id` (the server restarted,
 * or a failover reached another server), or the marker key this sets gone (FLUSHALL, a restart without
 * persistence that kept the run id of a replica). Either way every job it held may be gone, and the sweep
 * should re-add them now rather than at its next pass.
 *
 * The first call only learns the current state and answers false. Throws while Redis is unreachable; the
 * caller asks again later, and the first answer after the outage says whether the data survived it.
 */
export function redisLossDetector(
  client: () => Promise<Client> | Client,
  markerKey: string,
): () => Promise<boolean> {
  let known: string | undefined;
  return async () => {
    const redis = await client();
    const info = await redis.info("server");
    const runId = /^run_id:(\S+)/m.exec(info)?.[1] ?? "unknown";
    // NX: only the first process to look after a loss recreates it, and that one sees "OK".
    const recreated = (await redis.set(markerKey, runId, "NX")) === "OK";
    const lost = known !== undefined && (runId !== known || recreated);
    known = runId;
    return lost;
  };
}

/** The marker key of a queue's Redis, beside BullMQ's own `bull:<queue>:*` keys. */
export const redisMarkerKey = (queueName: string) => `garbage:${queueName}:redis-marker`;
