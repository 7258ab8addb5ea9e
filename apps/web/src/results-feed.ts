// A batch's results, read a page at a time and kept current while the batch runs without reading the
// whole batch again: only pages that may still change are fetched again. Cursors are upload indices
// (`GET /v1/batches/{id}/results?cursor=` lists images after that index), so "every image up to index F has
// its result" is a number, and a page that ends at or before F is final.

import { getJson, query } from "./api";
import type { Page, ResultItem } from "./types";

export type Get = <T>(path: string) => Promise<T>;

/** What the batch page filters on; empty strings mean no filter. */
export interface Filter {
  label?: string;
  needsReview?: string;
}

/** One page as fetched: the cursor it started after, the one it ended on, and whether it can still change. */
export interface Chunk {
  after: string | null;
  next: string | null;
  items: ResultItem[];
  settled: boolean;
}

export interface FeedOptions {
  get?: Get;
  /** Results per page of the gallery. */
  pageSize?: number;
  /** Results per request when looking for the first image still queued. */
  probeSize?: number;
  /** Requests per call when looking for it: a bound on one poll's work in a long, finished stretch. */
  probePages?: number;
}

const defaults = { get: getJson as Get, pageSize: 200, probeSize: 100, probePages: 5 };

const resultsPath = (batchId: string, after: string | null, limit: number, filter: Filter = {}) =>
  `/v1/batches/${batchId}/results${query({ cursor: after, limit, label: filter.label, needsReview: filter.needsReview })}`;

/**
 * Moves `done` (every image with index <= done has its result; -1 none known, Infinity all) forward by
 * reading from it, unfiltered, until a page holds an image still queued. A result, once there, never goes
 * back to queued, so `done` measured before a page is fetched says which of its images are final.
 */
export async function advanceDone(batchId: string, done: number, options: FeedOptions = {}): Promise<number> {
  const { get, probeSize, probePages } = { ...defaults, ...options };
  let at = done;
  for (let i = 0; i < probePages && at !== Number.POSITIVE_INFINITY; i++) {
    const page = await get<Page<ResultItem>>(resultsPath(batchId, at < 0 ? null : String(at), probeSize));
    if (page.items.some((r) => r.status === "queued")) return at;
    if (page.nextCursor === null) return Number.POSITIVE_INFINITY;
    at = Number(page.nextCursor);
  }
  return at;
}

/** One page after `after`; settled when every image it could hold was final before it was read. */
export async function fetchChunk(
  batchId: string,
  after: string | null,
  filter: Filter,
  done: number,
  options: FeedOptions = {},
): Promise<Chunk> {
  const { get, pageSize } = { ...defaults, ...options };
  const page = await get<Page<ResultItem>>(resultsPath(batchId, after, pageSize, filter));
  const next = page.nextCursor;
  const settled = next === null ? done === Number.POSITIVE_INFINITY : Number(next) <= done;
  return { after, next, items: page.items, settled };
}

/**
 * The same pages again, fetching only those not settled: a filtered page may gain results (and then end
 * earlier), so the pages after one that changed its end are read on from the new end.
 */
export async function refreshChunks(
  batchId: string,
  chunks: readonly Chunk[],
  filter: Filter,
  done: number,
  options: FeedOptions = {},
): Promise<Chunk[]> {
  const out: Chunk[] = [];
  let after: string | null = null;
  for (const [i, chunk] of chunks.entries()) {
    if (i > 0 && after === null) break;
    if (chunk.settled && chunk.after === after) {
      out.push(chunk);
    } else {
      out.push(await fetchChunk(batchId, after, filter, done, options));
    }
    after = out.at(-1)?.next ?? null;
  }
  return out;
}
