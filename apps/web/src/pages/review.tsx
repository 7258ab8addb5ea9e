import { useEffect, useState } from "preact/hooks";
import { getJson, percent, query, sendJson, session } from "../api";
import { AuthImage, ErrorBox, Field, SiteSelect, when } from "../components/common";
import { reasonWords } from "../components/result-card";
import type { Me, ReviewPage as Queue, QueueItem, SimilarItem } from "../types";

function Similar({ imageId }: { imageId: string }) {
  const [items, setItems] = useState<SimilarItem[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    setItems(null);
    getJson<{ items: SimilarItem[] }>(`/v1/results/${imageId}/similar${query({ k: 5 })}`)
      .then((r) => setItems(r.items))
      .catch(setError);
  }, [imageId]);
  if (error) return <ErrorBox error={error} />;
  if (!items) return <p aria-busy="true">Looking for similar reviewed images…</p>;
  if (items.length === 0) return <p class="hint">No similar reviewed images yet.</p>;
  return (
    <div class="gallery small" data-testid="similar">
      {items.map((s) => (
        <figure key={s.imageId} class="tile">
          <AuthImage src={`/v1/images/${s.imageId}/thumbnail`} alt={s.filename ?? s.imageId} />
          <figcaption>
            <strong class="class-name">{s.label}</strong> <span>distance {s.distance.toFixed(3)}</span>
          </figcaption>
        </figure>
      ))}
    </div>
  );
}

/**
 * The images the model is unsure of and the blind audits, oldest first; one key per decision. An audit shows
 * only the photo (no model label, confidence or similar reviewed images) and Enter does nothing on it, so the
 * answer is the person's own: that is what makes audits an unbiased sample for the statistics.
 */
export function ReviewPage({ me }: { me: Me }) {
  const [site, setSite] = useState(me.sites?.length === 1 ? (me.sites[0] as string) : "");
  const [line, setLine] = useState("");
  const [kind, setKind] = useState<"all" | "review" | "audit">("all");
  const [reviewer, setReviewer] = useState(session.reviewer());
  const [queue, setQueue] = useState<Queue | null>(null);
  const [index, setIndex] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState("");
  const [saving, setSaving] = useState(false);
  const classes = me.classes;

  const load = () =>
    getJson<Queue>(`/v1/review${query({ site, line, kind, limit: 50 })}`)
      .then((q) => {
        setQueue(q);
        setIndex(0);
        setError(null);
      })
      .catch(setError);
  useEffect(() => void load(), [site, line, kind]);

  const item: QueueItem | undefined = queue?.items[index];
  const modelLabel = item?.kind === "review" ? item.label : null;

  async function decide(label: string) {
    if (!item || saving) return;
    setSaving(true);
    try {
      const r = await sendJson<{ changed: boolean; modelLabel: string; label: string }>(
        "PUT",
        `/v1/results/${item.imageId}/review`,
        { label, ...(reviewer.trim() ? { reviewer: reviewer.trim() } : {}) },
      );
      // After an audit, say only what was stored: the model's answer stays out of the reviewer's sight.
      setSaved(
        item.kind === "audit"
          ? `${item.filename ?? item.imageId}: audited as ${r.label}`
          : `${item.filename ?? item.imageId}: ${r.changed ? `corrected ${r.modelLabel} → ${r.label}` : `confirmed ${r.label}`}`,
      );
      setError(null);
      const rest = (queue?.items ?? []).filter((x) => x.imageId !== item.imageId);
      if (rest.length === 0) await load();
      else {
        setQueue((q) => q && { ...q, items: rest, remaining: Math.max(0, q.remaining - 1) });
        setIndex((i) => Math.min(i, rest.length - 1));
      }
    } catch (err) {
      setError(err);
    } finally {
      setSaving(false);
    }
  }

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement | null;
      if (t && /^(INPUT|SELECT|TEXTAREA)$/.test(t.tagName)) return;
      if (e.altKey || e.ctrlKey || e.metaKey) return;
      const n = Number(e.key);
      if (Number.isInteger(n) && n >= 1 && n <= classes.length) void decide(classes[n - 1] as string);
      else if (e.key === "Enter" && modelLabel && t?.tagName !== "BUTTON") void decide(modelLabel);
      else if (e.key === "ArrowRight" || e.key === "ArrowDown")
        setIndex((i) => Math.min(i + 1, (queue?.items.length ?? 1) - 1));
      else if (e.key === "ArrowLeft" || e.key === "ArrowUp") setIndex((i) => Math.max(i - 1, 0));
      else return;
      e.preventDefault();
    };
    addEventListener("keydown", onKey);
    return () => removeEventListener("keydown", onKey);
  });

  return (
    <section>
      <h1>Review queue</h1>
      <div class="row">
        <SiteSelect me={me} value={site} onChange={setSite} />
        <Field label="Line">
          <input value={line} onChange={(e) => setLine(e.currentTarget.value)} />
        </Field>
        <Field label="Show">
          <select name="kind" value={kind} onChange={(e) => setKind(e.currentTarget.value as typeof kind)}>
            <option value="all">Flagged and audits</option>
            <option value="review">Flagged by the model</option>
            <option value="audit">Blind audits</option>
          </select>
        </Field>
        <Field label="Your name (stored with each review)">
          <input
            name="reviewer"
            value={reviewer}
            maxLength={100}
            onInput={(e) => {
              setReviewer(e.currentTarget.value);
              session.setReviewer(e.currentTarget.value);
            }}
          />
        </Field>
      </div>
      <p class="hint">
        Keys: <kbd>1</kbd>–<kbd>{classes.length}</kbd> pick a class, <kbd>Enter</kbd> confirms the model's
        label (not on a blind audit, which has none to show), <kbd>←</kbd> <kbd>→</kbd> move.
      </p>
      <ErrorBox error={error} />
      <p aria-live="polite" class="saved" data-testid="saved">
        {saved}
      </p>
      {!queue ? (
        <p aria-busy="true">Loading…</p>
      ) : !item ? (
        <p data-testid="queue-empty">Nothing to review{site ? ` at ${site}` : ""}.</p>
      ) : (
        <div class="review" data-testid="review-item" data-kind={item.kind}>
          <p>
            {index + 1} of {queue.items.length} loaded, <span data-testid="remaining">{queue.remaining}</span>{" "}
            waiting in all
          </p>
          <div class="review-main">
            <AuthImage class="big" src={`/v1/images/${item.imageId}`} alt={item.filename ?? item.imageId} />
            <div>
              <h2 class="filename">{item.filename ?? item.imageId}</h2>
              {item.kind === "audit" ? (
                <p data-testid="audit-note">
                  <strong>Blind audit.</strong> Pick the class you see: the model's answer is hidden so that
                  your label is your own. A small random share of all images is audited; the statistics use
                  these answers to estimate how often the model is right.
                </p>
              ) : (
                <p>
                  Model says <strong class="class-name">{item.label}</strong> ({percent(item.confidence)});
                  needs review for {reasonWords(item.reviewReasons) || "no stated reason"}.
                </p>
              )}
              <p class="hint">
                {item.site ?? "–"} / {item.line ?? "–"} · uploaded {when(item.createdAt)}
                {item.kind === "review"
                  ? ` · top: ${item.top.map((t) => `${t.label} ${percent(t.confidence)}`).join(", ")}`
                  : ""}
              </p>
              <fieldset class="choices">
                <legend>Correct class</legend>
                {classes.map((c, i) => (
                  <button
                    type="button"
                    key={c}
                    class={c === modelLabel ? "primary" : ""}
                    disabled={saving}
                    onClick={() => void decide(c)}
                  >
                    <kbd>{i + 1}</kbd> {c}
                    {c === modelLabel ? " (model)" : ""}
                  </button>
                ))}
              </fieldset>
              <div class="row">
                <button type="button" disabled={index === 0} onClick={() => setIndex(index - 1)}>
                  ← Previous
                </button>
                <button
                  type="button"
                  disabled={index >= queue.items.length - 1}
                  onClick={() => setIndex(index + 1)}
                >
                  Next →
                </button>
              </div>
            </div>
          </div>
          {item.kind === "review" && (
            <>
              <h2>Most similar reviewed images</h2>
              <Similar imageId={item.imageId} />
            </>
          )}
        </div>
      )}
    </section>
  );
}
