import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { getJson } from "./api";
import { isRunning } from "./pages/batches";
import { advanceDone, type Chunk, type Filter, fetchChunk, refreshChunks } from "./results-feed";
import type { Batch } from "./types";

const POLL_MS = 1500;

/**
 * A batch and the pages of its (filtered) results loaded so far. While anything shown can still change it
 * polls the batch's counters and re-reads only the unsettled pages; `loadMore` adds the next page.
 */
export function useResultFeed(batchId: string, filter: Filter) {
  const [batch, setBatch] = useState<Batch | null>(null);
  const [chunks, setChunks] = useState<Chunk[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const more = useRef<() => void>(() => {});

  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    // Polls and "load more" take turns on the same pages, never both at once.
    let turn: Promise<void> = Promise.resolve();
    let done = -1;
    let loaded: Chunk[] = [];
    let current: Batch | null = null;
    setBatch(null);
    setChunks(null);
    setError(null);

    const serially = (step: () => Promise<void>) => {
      turn = turn.then(async () => {
        if (!live) return;
        let wait = POLL_MS;
        try {
          await step();
          if (live) setError(null);
        } catch (err) {
          if (live) setError(err);
          wait = POLL_MS * 3;
        }
        const moving = current === null || isRunning(current) || loaded.some((c) => !c.settled);
        if (live && moving && timer === undefined) {
          timer = setTimeout(() => {
            timer = undefined;
            serially(poll);
          }, wait);
        }
      });
    };
    const publish = () => {
      if (!live) return;
      setBatch(current);
      setChunks(loaded);
    };
    const poll = async () => {
      current = await getJson<Batch>(`/v1/batches/${batchId}`);
      if (loaded.length === 0 || loaded.some((c) => !c.settled)) {
        done = isRunning(current) ? await advanceDone(batchId, done) : Number.POSITIVE_INFINITY;
        loaded = loaded.length
          ? await refreshChunks(batchId, loaded, filter, done)
          : [await fetchChunk(batchId, null, filter, done)];
      }
      publish();
    };
    more.current = () =>
      serially(async () => {
        const last = loaded.at(-1);
        if (!last?.next) return;
        if (current && isRunning(current)) done = await advanceDone(batchId, done);
        loaded = [...loaded, await fetchChunk(batchId, last.next, filter, done)];
        publish();
      });
    serially(poll);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [batchId, filter.label, filter.needsReview]);

  const loadMore = useCallback(() => more.current(), []);
  const items = chunks?.flatMap((c) => c.items) ?? null;
  const hasMore = Boolean(chunks?.at(-1)?.next);
  return { batch, items, hasMore, loadMore, error };
}
