import { useEffect, useRef, useState } from "preact/hooks";
import { describe, getJson, query } from "../api";
import { ErrorBox, Field } from "../components/common";
import { type CardResult, ResultCard } from "../components/result-card";
import type { Batch, Classification, Me, Page, ResultItem } from "../types";

interface Entry {
  name: string;
  preview: string;
  result: CardResult | null;
  error: string | null;
}

const fromClassification = (c: Classification): CardResult => ({
  label: c.label,
  confidence: c.confidence,
  top: c.top,
  needsReview: c.needsReview,
  reasons: [c.review.lowConfidence && "low_confidence", c.review.unfamiliar && "unfamiliar"].filter(
    (r): r is string => Boolean(r),
  ),
});

const fromResult = (r: ResultItem): Pick<Entry, "result" | "error"> =>
  r.status === "ok" && r.label !== null && r.confidence !== null
    ? {
        result: {
          label: r.label,
          confidence: r.confidence,
          top: r.top,
          needsReview: r.needsReview ?? false,
          reasons: r.reviewReasons,
        },
        error: null,
      }
    : { result: null, error: `Not classified: ${r.error?.message ?? r.error?.code ?? "failed"}` };

const PAGE = 200;
/** Cards shown at first and added per "Show more": thousands of previews at once would stall the page. */
const CARDS = 60;

export function ClassifyPage({ me }: { me: Me }) {
  const [site, setSite] = useState(me.sites?.[0] ?? "");
  const [line, setLine] = useState("");
  const [entries, setEntries] = useState<Entry[]>([]);
  const [batch, setBatch] = useState<Batch | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [dragging, setDragging] = useState(false);
  const [shown, setShown] = useState(CARDS);
  const run = useRef(0);

  const previews = useRef<string[]>([]);
  const revoke = () => {
    for (const u of previews.current.splice(0)) URL.revokeObjectURL(u);
  };
  // Leaving the page stops any polling (a newer run id) and frees the previews.
  useEffect(
    () => () => {
      run.current++;
      revoke();
    },
    [],
  );

  const update = (id: number, i: number, patch: Partial<Entry>) =>
    run.current === id && setEntries((es) => es.map((e, j) => (j === i ? { ...e, ...patch } : e)));

  async function classifyOne(id: number, file: File) {
    const form = new FormData();
    form.append("image", file, file.name);
    try {
      const c = await getJson<Classification>("/v1/classify", { method: "POST", body: form });
      update(id, 0, { result: fromClassification(c) });
    } catch (err) {
      update(id, 0, { error: describe(err) });
    }
  }

  async function classifyMany(id: number, files: File[]) {
    const form = new FormData();
    if (site) form.append("site", site);
    if (line) form.append("line", line);
    for (const f of files) form.append("images", f, f.name);
    const accepted = await getJson<Batch>("/v1/batches", { method: "POST", body: form });
    setBatch(accepted);
    // Results fill in as workers write them. Images are indexed in upload order (0..n-1, the order of the
    // form's parts, so entries[i] is image i) and a result never changes once written: each poll reads on
    // from the first image still queued, never the finished ones again.
    let done = -1;
    for (;;) {
      if (run.current !== id) return;
      const b = await getJson<Batch>(`/v1/batches/${accepted.id}`);
      if (run.current !== id) return;
      setBatch(b);
      const before = done;
      for (let pages = 0; pages < 5 && done < b.total - 1; pages++) {
        const cursor = done < 0 ? null : done;
        const page = await getJson<Page<ResultItem>>(
          `/v1/batches/${accepted.id}/results${query({ cursor, limit: PAGE })}`,
        );
        if (run.current !== id) return;
        const start = done + 1;
        setEntries((es) => {
          const next = es.slice();
          for (const [j, r] of page.items.entries()) {
            const entry = next[start + j];
            if (entry && r.status !== "queued") next[start + j] = { ...entry, ...fromResult(r) };
          }
          return next;
        });
        const queued = page.items.findIndex((r) => r.status === "queued");
        done += queued < 0 ? page.items.length : queued;
        if (queued >= 0 || page.nextCursor === null) break;
      }
      if (done >= b.total - 1) return;
      // A finished batch is read to its end at once; one that says finished yet lists a queued image
      // (nothing left to wait for) stops here rather than asking in a loop.
      const finished = b.status.startsWith("completed");
      if (finished && done === before) return;
      if (!finished) await new Promise((r) => setTimeout(r, 1000));
    }
  }

  async function submit(list: FileList | File[] | null) {
    const files = [...(list ?? [])];
    if (files.length === 0) return;
    const id = ++run.current;
    setError(null);
    setBatch(null);
    setShown(CARDS);
    revoke();
    previews.current = files.map((f) => URL.createObjectURL(f));
    setEntries(
      files.map((f, i) => ({
        name: f.name,
        preview: previews.current[i] as string,
        result: null,
        error: null,
      })),
    );
    setBusy(true);
    try {
      if (files.length === 1) await classifyOne(id, files[0] as File);
      else await classifyMany(id, files);
    } catch (err) {
      if (run.current === id) setError(err);
    } finally {
      if (run.current === id) setBusy(false);
    }
  }

  return (
    <section>
      <h1>Classify</h1>
      {/* biome-ignore lint/a11y/noStaticElementInteractions: dropping is a shortcut; the two file inputs inside are the keyboard path */}
      <div
        class={`dropzone${dragging ? " dragging" : ""}`}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          void submit(e.dataTransfer?.files ?? null);
        }}
      >
        <p>Drop photos here, or</p>
        <div class="row">
          <label class="button">
            Choose images
            <input
              type="file"
              accept="image/*"
              multiple
              class="visually-hidden"
              data-testid="pick"
              onChange={(e) => void submit(e.currentTarget.files)}
            />
          </label>
          <label class="button">
            Take a photo
            <input
              type="file"
              accept="image/*"
              capture="environment"
              class="visually-hidden"
              onChange={(e) => void submit(e.currentTarget.files)}
            />
          </label>
        </div>
        <p class="hint">
          One image is classified at once; several go through a batch and fill in as they finish.
        </p>
      </div>
      <div class="row">
        <Field label="Site (batches)">
          <input value={site} list="sites" onInput={(e) => setSite(e.currentTarget.value)} />
          <datalist id="sites">
            {(me.sites ?? me.visibleSites).map((s) => (
              <option key={s} value={s} />
            ))}
          </datalist>
        </Field>
        <Field label="Line (batches)">
          <input value={line} onInput={(e) => setLine(e.currentTarget.value)} />
        </Field>
      </div>
      <ErrorBox error={error} />
      {batch ? (
        <p class="batch-progress" aria-live="polite">
          Batch <a href={`#/batches/${batch.id}`}>{batch.id.slice(0, 8)}</a>: {batch.processed} of{" "}
          {batch.total} done{batch.failed ? `, ${batch.failed} failed` : ""} ({batch.status})
          <progress max={batch.total} value={batch.processed} />
        </p>
      ) : null}
      {busy && !batch && entries.length > 1 ? <p aria-live="polite">Uploading…</p> : null}
      <div class="cards">
        {entries.slice(0, shown).map((e) => (
          <ResultCard
            key={e.preview}
            name={e.name}
            image={<img src={e.preview} alt={e.name} loading="lazy" />}
            result={e.result}
            error={e.error}
            pending={busy}
          />
        ))}
      </div>
      {entries.length > shown ? (
        <p>
          <button type="button" onClick={() => setShown((n) => n + CARDS)}>
            Show more ({entries.length - shown} not shown)
          </button>
        </p>
      ) : null}
    </section>
  );
}
