import { useState } from "preact/hooks";
import { describe, download, getJson, percent, query } from "../api";
import { AuthImage, ErrorBox, Field, usePoll, when } from "../components/common";
import { ReviewWarning } from "../components/result-card";
import type { Batch, Me, Page, ResultItem } from "../types";
import { isRunning, Progress } from "./batches";

async function allResults(id: string, label: string, needsReview: string): Promise<ResultItem[]> {
  const items: ResultItem[] = [];
  let cursor: string | null = null;
  do {
    const page: Page<ResultItem> = await getJson(
      `/v1/batches/${id}/results${query({ limit: 500, cursor, label, needsReview })}`,
    );
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor && items.length < 5000);
  return items;
}

function Tile({ r }: { r: ResultItem }) {
  const label = r.effectiveLabel ?? r.label;
  return (
    <figure class={`tile${r.needsReview ? " needs-review" : ""}`} data-testid="tile">
      <AuthImage src={`/v1/images/${r.imageId}/thumbnail`} alt={r.filename ?? r.imageId} />
      <figcaption>
        <span class="filename">{r.filename ?? r.imageId}</span>
        {r.status === "ok" ? (
          <span>
            <strong class="class-name">{label}</strong> {percent(r.confidence)}
            {r.review ? (
              <span class="badge" title={`reviewed by ${r.review.reviewer ?? "?"}`}>
                {r.review.label === r.label ? "confirmed" : `corrected from ${r.label}`}
              </span>
            ) : null}
          </span>
        ) : r.status === "failed" ? (
          <span class="error">failed: {r.error?.message ?? r.error?.code}</span>
        ) : (
          <span class="pending">queued</span>
        )}
        {r.needsReview && !r.review ? <ReviewWarning reasons={r.reviewReasons} /> : null}
      </figcaption>
    </figure>
  );
}

/** One batch: its progress, a filtered gallery of its results, and its downloads. */
export function BatchPage({ id, me }: { id: string; me: Me }) {
  const [label, setLabel] = useState("");
  const [needsReview, setNeedsReview] = useState("");
  const [downloadError, setDownloadError] = useState<string | null>(null);
  const { value, error } = usePoll(
    async () => {
      const [batch, items] = await Promise.all([
        getJson<Batch>(`/v1/batches/${id}`),
        allResults(id, label, needsReview),
      ]);
      return { batch, items };
    },
    [id, label, needsReview],
    1500,
    (v) => isRunning(v.batch),
  );
  const save = (format: "csv" | "json") =>
    download(`/v1/batches/${id}/results.${format}`).catch((err) => setDownloadError(describe(err)));
  const b = value?.batch;
  return (
    <section>
      <p>
        <a href="#/batches">← Batches</a>
      </p>
      <h1>Batch {id.slice(0, 8)}</h1>
      <ErrorBox error={error} />
      {b ? (
        <dl class="facts">
          <dt>Status</dt>
          <dd class={`status ${b.status}`}>{b.status.replaceAll("_", " ")}</dd>
          <dt>Progress</dt>
          <dd>
            <Progress batch={b} />
          </dd>
          <dt>Site / line</dt>
          <dd>
            {b.site ?? "–"} / {b.line ?? "–"}
          </dd>
          <dt>Created</dt>
          <dd>{when(b.createdAt)}</dd>
          <dt>Completed</dt>
          <dd>{when(b.completedAt)}</dd>
        </dl>
      ) : null}
      <div class="row">
        <Field label="Class">
          <select value={label} onChange={(e) => setLabel(e.currentTarget.value)}>
            <option value="">all classes</option>
            {me.classes.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Needs review">
          <select value={needsReview} onChange={(e) => setNeedsReview(e.currentTarget.value)}>
            <option value="">all</option>
            <option value="true">needs review</option>
            <option value="false">confident</option>
          </select>
        </Field>
        <button type="button" onClick={() => void save("csv")}>
          Download CSV
        </button>
        <button type="button" onClick={() => void save("json")}>
          Download JSON
        </button>
      </div>
      {downloadError ? (
        <p class="error" role="alert">
          {downloadError}
        </p>
      ) : null}
      {value ? (
        <>
          <p aria-live="polite">{value.items.length} results shown</p>
          <div class="gallery">
            {value.items.map((r) => (
              <Tile key={r.imageId} r={r} />
            ))}
          </div>
        </>
      ) : (
        <p aria-busy="true">Loading…</p>
      )}
    </section>
  );
}
