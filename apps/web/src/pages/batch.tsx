import { useMemo, useState } from "preact/hooks";
import { describe, download, percent } from "../api";
import { AuthImage, ErrorBox, Field, when } from "../components/common";
import { ReviewWarning } from "../components/result-card";
import type { Me, ResultItem } from "../types";
import { useResultFeed } from "../use-result-feed";
import { Progress } from "./batches";

function Tile({ r }: { r: ResultItem }) {
  const label = r.effectiveLabel ?? r.label;
  return (
    <figure class={`tile${r.needsReview ? " needs-review" : ""}`} data-testid="tile">
      <AuthImage src={`/v1/images/${r.imageId}/thumbnail`} alt={r.filename ?? r.imageId} lazy />
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
  const filter = useMemo(() => ({ label, needsReview }), [label, needsReview]);
  const { batch: b, items, hasMore, loadMore, error } = useResultFeed(id, filter);
  const save = (format: "csv" | "json") =>
    download(`/v1/batches/${id}/results.${format}`).catch((err) => setDownloadError(describe(err)));
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
      {items ? (
        <>
          <p aria-live="polite">
            {items.length} results shown{hasMore ? ", more to load" : ""}
          </p>
          <div class="gallery">
            {items.map((r) => (
              <Tile key={r.imageId} r={r} />
            ))}
          </div>
          {hasMore ? (
            <p>
              <button type="button" onClick={loadMore}>
                Load more
              </button>
            </p>
          ) : null}
        </>
      ) : (
        <p aria-busy="true">Loading…</p>
      )}
    </section>
  );
}
