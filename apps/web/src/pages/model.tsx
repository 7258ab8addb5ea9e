import { useEffect, useState } from "preact/hooks";
import { download, getJson, percent, query } from "../api";
import { AuthImage, ErrorBox, SiteSelect, when } from "../components/common";
import type { Me, Metrics, ModelInfo } from "../types";
import { ModelVersions } from "./model-versions";

const show = (v: unknown): string =>
  typeof v === "number"
    ? Number.isInteger(v)
      ? String(v)
      : v.toFixed(4)
    : typeof v === "string"
      ? v
      : JSON.stringify(v);

/** The review section of the manifest as a two-column table (the reference file's details stay out). */
function KeyValues({ data, caption }: { data: Record<string, unknown> | null | undefined; caption: string }) {
  const rows = Object.entries(data ?? {}).filter(([, v]) => typeof v !== "object");
  if (rows.length === 0) return null;
  return (
    <table class="kv">
      <caption>{caption}</caption>
      <tbody>
        {rows.map(([k, v]) => (
          <tr key={k}>
            <th scope="row">{k}</th>
            <td>{show(v)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** One row per evaluation: the headline numbers. */
function MetricsTable({ rows, caption }: { rows: Metrics[]; caption: string }) {
  if (rows.length === 0) return null;
  return (
    <div class="table-wrap">
      <table data-testid="metrics">
        <caption>{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Data set</th>
            <th scope="col">Images</th>
            <th scope="col">Accuracy</th>
            <th scope="col">Macro F1</th>
            <th scope="col">ECE</th>
            <th scope="col">Flagged for review</th>
            <th scope="col">Accuracy when not flagged</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((m, i) => (
            <tr key={`${m.dataset}-${i}`}>
              <th scope="row">{m.dataset ?? "–"}</th>
              <td>{m.n ?? "–"}</td>
              <td>{percent(m.accuracy)}</td>
              <td>{m.macroF1?.toFixed(3) ?? "–"}</td>
              <td>{m.ece?.toFixed(3) ?? "–"}</td>
              <td>{percent(m.review?.flaggedRate)}</td>
              <td>{percent(m.review?.confidentAccuracy)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Confusion({ labels, matrix, caption }: { labels: string[]; matrix: number[][]; caption: string }) {
  const max = Math.max(1, ...matrix.flat());
  return (
    <div class="table-wrap">
      <table class="confusion" data-testid="confusion">
        <caption>{caption} (rows: true class, columns: predicted)</caption>
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
  const first = model?.metrics[0];
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
          <MetricsTable rows={model.metrics} caption="Evaluations recorded in the manifest" />
          <KeyValues data={model.review} caption="Review thresholds (manifest)" />
          <h2>Latest evaluation report</h2>
          {report ? (
            <>
              <p>Generated {when(report.generatedAt)}</p>
              <MetricsTable rows={[report.metrics]} caption="Report metrics" />
              <Confusion
                labels={report.confusion.labels}
                matrix={report.confusion.matrix}
                caption="Confusion matrix of the report"
              />
              <h3>Misclassified ({report.misclassified.length})</h3>
              <div class="gallery misclassified">
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
            <>
              {first?.confusion && first.classes ? (
                <Confusion
                  labels={first.classes}
                  matrix={first.confusion}
                  caption={`Confusion matrix from the manifest (${first.dataset ?? "first evaluation"})`}
                />
              ) : null}
              <p class="hint">
                No report yet: run <code>npm run -s garbage -- eval --report &lt;dir&gt;</code> and point the
                API's EVAL_REPORT_DIR at it.
              </p>
            </>
          )}
        </>
      ) : null}
      <ModelVersions me={me} />
      <h2>Training data export</h2>
      <p>
        Every reviewed image (confirmed or corrected) as <code>&lt;class&gt;/&lt;image&gt;</code> in a tar
        file, ready for <code>npm run train</code>.
      </p>
      <div class="row">
        <SiteSelect me={me} value={site} onChange={setSite} />
        <button
          type="button"
          disabled={exporting}
          onClick={() => {
            setExporting(true);
            download(`/v1/review/export${query({ site })}`)
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
