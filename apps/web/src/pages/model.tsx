import { useEffect, useState } from "preact/hooks";
import { download, getJson, percent, query } from "../api";
import { AuthImage, ErrorBox, Field, when } from "../components/common";
import type { Me, ModelInfo } from "../types";

const show = (v: unknown): string =>
  typeof v === "number"
    ? Number.isInteger(v)
      ? String(v)
      : v.toFixed(4)
    : typeof v === "string"
      ? v
      : JSON.stringify(v);

/** A manifest or report section as a two-column table; nested objects stay JSON. */
function KeyValues({ data, caption }: { data: Record<string, unknown> | null | undefined; caption: string }) {
  if (!data || Object.keys(data).length === 0) return null;
  return (
    <table class="kv">
      <caption>{caption}</caption>
      <tbody>
        {Object.entries(data).map(([k, v]) => (
          <tr key={k}>
            <th scope="row">{k}</th>
            <td>{show(v)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Confusion({ labels, matrix }: { labels: string[]; matrix: number[][] }) {
  const max = Math.max(1, ...matrix.flat());
  return (
    <div class="table-wrap">
      <table class="confusion" data-testid="confusion">
        <caption>Confusion matrix (rows: true class, columns: predicted)</caption>
        <thead>
          <tr>
            <th scope="col">true \ predicted</th>
            {labels.map((l) => (
              <th scope="col" key={l}>
                {l}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {matrix.map((row, i) => (
            <tr key={labels[i]}>
              <th scope="row">{labels[i]}</th>
              {row.map((n, j) => (
                <td
                  key={labels[j]}
                  class={i === j ? "diag" : n > 0 ? "off" : ""}
                  style={{ "--heat": String(n / max) }}
                >
                  {n}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The serving model, its latest evaluation report, and the reviewed-images export. */
export function ModelPage({ me }: { me: Me }) {
  const [model, setModel] = useState<ModelInfo | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [site, setSite] = useState(me.sites?.length === 1 ? (me.sites[0] as string) : "");
  const [exporting, setExporting] = useState(false);
  useEffect(() => {
    getJson<ModelInfo>("/v1/model").then(setModel).catch(setError);
  }, []);
  const report = model?.report;
  return (
    <section>
      <h1>Model</h1>
      <ErrorBox error={error} />
      {model ? (
        <>
          <dl class="facts" data-testid="model-facts">
            <dt>Name</dt>
            <dd>{model.name}</dd>
            <dt>Version</dt>
            <dd>{model.version}</dd>
            <dt>Classes</dt>
            <dd>{model.classes.join(", ")}</dd>
          </dl>
          <KeyValues data={model.metrics} caption="Metrics (manifest)" />
          <KeyValues data={model.review} caption="Review thresholds (manifest)" />
          <h2>Latest evaluation report</h2>
          {report ? (
            <>
              <p>Generated {when(report.generatedAt)}</p>
              <KeyValues data={report.metrics} caption="Report metrics" />
              <Confusion labels={report.confusion.labels} matrix={report.confusion.matrix} />
              <h3>Misclassified ({report.misclassified.length})</h3>
              <div class="gallery">
                {report.misclassified.map((m) => (
                  <figure class="tile" key={m.file}>
                    <AuthImage
                      src={m.thumbnail.startsWith("/") ? m.thumbnail : `/v1/model/report/${m.thumbnail}`}
                      alt={m.file}
                    />
                    <figcaption>
                      <span class="filename">{m.file}</span>
                      <span>
                        true <strong>{m.truth}</strong>, predicted <strong>{m.predicted}</strong>{" "}
                        {percent(m.confidence)}
                      </span>
                    </figcaption>
                  </figure>
                ))}
              </div>
            </>
          ) : (
            <p class="hint">
              No report yet: run <code>npm run -s garbage -- eval --report &lt;dir&gt;</code> and point the
              API's EVAL_REPORT_DIR at it.
            </p>
          )}
        </>
      ) : null}
      <h2>Training data export</h2>
      <p>
        Every reviewed image (confirmed or corrected) as <code>&lt;class&gt;/&lt;image&gt;</code> in a tar
        file, ready for <code>npm run train</code>.
      </p>
      <div class="row">
        <Field label="Site">
          <select value={site} onChange={(e) => setSite(e.currentTarget.value)}>
            {me.sites?.length === 1 ? null : <option value="">all my sites</option>}
            {(me.sites ?? me.visibleSites).map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </Field>
        <button
          type="button"
          disabled={exporting}
          onClick={() => {
            setExporting(true);
            download(`/v1/review/export${query({ site })}`, "reviewed.tar")
              .catch(setError)
              .finally(() => setExporting(false));
          }}
        >
          {exporting ? "Preparing…" : "Download reviewed images (.tar)"}
        </button>
      </div>
    </section>
  );
}
