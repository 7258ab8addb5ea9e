import { useState } from "preact/hooks";
import { getJson, query } from "../api";
import { ErrorBox, usePoll, when } from "../components/common";
import type { Batch, Page } from "../types";

export const isRunning = (b: Batch) => !b.status.startsWith("completed");

export function Progress({ batch }: { batch: Batch }) {
  return (
    <span class="progress">
      <progress
        max={batch.total}
        value={batch.processed}
        aria-label={`${batch.processed} of ${batch.total}`}
      />{" "}
      {batch.processed}/{batch.total}
      {batch.failed ? ` (${batch.failed} failed)` : ""}
    </span>
  );
}

/** Recent batches, newest first; refreshed every two seconds while any of them is still running. */
export function BatchesPage() {
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const cursor = cursors[cursors.length - 1] ?? null;
  const { value, error } = usePoll(
    () => getJson<Page<Batch>>(`/v1/batches${query({ limit: 20, cursor })}`),
    [cursor],
    2000,
    (page) => page.items.some(isRunning),
  );
  return (
    <section>
      <h1>Batches</h1>
      <ErrorBox error={error} />
      {!value ? (
        <p aria-busy="true">Loading…</p>
      ) : value.items.length === 0 ? (
        <p>No batches yet. Upload several images on the Classify page or with POST /v1/batches.</p>
      ) : (
        <div class="table-wrap">
          <table class="batches">
            <caption class="visually-hidden">Recent batches</caption>
            <thead>
              <tr>
                <th scope="col">Batch</th>
                <th scope="col">Created</th>
                <th scope="col">Site</th>
                <th scope="col">Line</th>
                <th scope="col">Status</th>
                <th scope="col">Progress</th>
              </tr>
            </thead>
            <tbody>
              {value.items.map((b) => (
                <tr key={b.id} data-testid="batch-row">
                  <td>
                    <a href={`#/batches/${b.id}`}>{b.id.slice(0, 8)}</a>
                  </td>
                  <td>{when(b.createdAt)}</td>
                  <td>{b.site ?? "–"}</td>
                  <td>{b.line ?? "–"}</td>
                  <td class={`status ${b.status}`}>{b.status.replaceAll("_", " ")}</td>
                  <td>
                    <Progress batch={b} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <div class="row">
        {cursors.length > 1 ? (
          <button type="button" onClick={() => setCursors((c) => c.slice(0, -1))}>
            Newer
          </button>
        ) : null}
        {value?.nextCursor ? (
          <button type="button" onClick={() => setCursors((c) => [...c, value.nextCursor])}>
            Older
          </button>
        ) : null}
      </div>
    </section>
  );
}
