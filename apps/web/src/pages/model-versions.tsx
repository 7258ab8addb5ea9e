import { useEffect, useState } from "preact/hooks";
import { ApiFailure, getJson, percent, sendJson } from "../api";
import { ErrorBox, when } from "../components/common";
import type { Me, ModelRegistry, ModelVersionInfo, SiteThreshold } from "../types";
import { Comparison } from "./model-compare";

const scope = (v: ModelVersionInfo) => v.sites?.join(", ") ?? "every site";
const trained = (v: ModelVersionInfo) =>
  v.trainedOn ? `${v.trainedOn.images} images (${v.trainedOn.source})` : "–";

/** Promotes; a refusal for lack of evidence or a worse candidate asks before forcing it. */
async function promote(v: ModelVersionInfo, site: string): Promise<boolean> {
  const body = site ? { sites: [site] } : {};
  try {
    await sendJson("POST", `/v1/models/${v.id}/promote`, body);
  } catch (err) {
    const refused =
      err instanceof ApiFailure && (err.code === "candidate_worse" || err.code === "no_evidence");
    if (!refused) throw err;
    if (!window.confirm(`${err.detail}\n\nPromote ${v.modelVersion} anyway?`)) return false;
    await sendJson("POST", `/v1/models/${v.id}/promote`, { ...body, force: true });
  }
  return true;
}

/** Site model versions: which serves where, a candidate against the active one, per-site thresholds. */
export function ModelVersions({ me }: { me: Me }) {
  const [registry, setRegistry] = useState<ModelRegistry | null>(null);
  const [thresholds, setThresholds] = useState<SiteThreshold[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [reload, setReload] = useState(0);
  const [picked, setPicked] = useState<string | null>(null);
  const [site, setSite] = useState(me.sites?.length === 1 ? (me.sites[0] as string) : "");
  const [busy, setBusy] = useState(false);
  const admin = me.sites === null;
  useEffect(() => {
    getJson<ModelRegistry>("/v1/models").then(setRegistry).catch(setError);
    getJson<{ thresholds: SiteThreshold[] }>("/v1/models/thresholds")
      .then((r) => setThresholds(r.thresholds))
      .catch(setError);
  }, [reload]);
  if (!registry) return <ErrorBox error={error} />;
  const act = (fn: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    fn()
      .catch(setError)
      .finally(() => {
        setBusy(false);
        setReload((n) => n + 1);
      });
  };
  const versions = registry.versions;
  const selected =
    versions.find((v) => v.id === picked) ??
    versions.find((v) => v.state === "shadow") ??
    versions.find((v) => v.state === "candidate");
  const byId = new Map(versions.map((v) => [v.id, v]));
  return (
    <>
      <h2>Site model versions</h2>
      <ErrorBox error={error} />
      <div class="table-wrap">
        <table data-testid="model-assignments">
          <caption>
            What labels each site's images (a site with none of its own uses "*", else the default)
          </caption>
          <thead>
            <tr>
              <th scope="col">Site</th>
              <th scope="col">Version</th>
              <th scope="col">Since</th>
              <th scope="col">Rollback restores</th>
              {admin ? <th scope="col" /> : null}
            </tr>
          </thead>
          <tbody>
            {registry.assignments.map((a) => {
              const back = a.previousVersionId
                ? (byId.get(a.previousVersionId)?.modelVersion ?? "?")
                : "'*' or the default";
              return (
                <tr key={a.site}>
                  <th scope="row">{a.site === "*" ? "* (every other site)" : a.site}</th>
                  <td>{a.modelVersion}</td>
                  <td>{when(a.assignedAt)}</td>
                  <td>{back}</td>
                  {admin ? (
                    <td>
                      <button
                        type="button"
                        disabled={busy}
                        onClick={() =>
                          window.confirm(`Roll back ${a.site} to ${back}?`) &&
                          act(() => sendJson("POST", "/v1/models/rollback", { sites: [a.site] }))
                        }
                      >
                        Rollback
                      </button>
                    </td>
                  ) : null}
                </tr>
              );
            })}
            <tr>
              <th scope="row">default</th>
              <td>{registry.default ?? "the shipped model"}</td>
              <td colSpan={admin ? 3 : 2}>sites without an assignment</td>
            </tr>
          </tbody>
        </table>
      </div>
      <div class="table-wrap">
        <table data-testid="model-versions">
          <caption>Registered versions (garbage models add, or POST /v1/models)</caption>
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">State</th>
              <th scope="col">Scope</th>
              <th scope="col">Trained on</th>
              <th scope="col">Data until</th>
              <th scope="col">Created</th>
              <th scope="col" />
            </tr>
          </thead>
          <tbody>
            {versions.map((v) => (
              <tr key={v.id} class={v.id === selected?.id ? "selected" : ""}>
                <th scope="row">{v.modelVersion}</th>
                <td>{v.state}</td>
                <td>{scope(v)}</td>
                <td>{trained(v)}</td>
                <td>{when(v.dataUntil)}</td>
                <td>{when(v.createdAt)}</td>
                <td>
                  <div class="row">
                    <button
                      type="button"
                      class="link"
                      onClick={() => {
                        setPicked(v.id);
                        setSite(me.sites?.length === 1 ? (me.sites[0] as string) : "");
                      }}
                    >
                      Compare
                    </button>
                    {admin && (v.state === "candidate" || v.state === "shadow" || v.state === "retired") ? (
                      <button
                        type="button"
                        disabled={busy}
                        onClick={() =>
                          act(() =>
                            sendJson("POST", `/v1/models/${v.id}/shadow`, { on: v.state !== "shadow" }),
                          )
                        }
                      >
                        {v.state === "shadow" ? "Stop shadow" : "Shadow"}
                      </button>
                    ) : null}
                    {admin ? (
                      <button
                        type="button"
                        class="primary"
                        disabled={busy}
                        onClick={() => act(() => promote(v, v.id === selected?.id ? site : ""))}
                      >
                        {v.id === selected?.id && site ? `Promote for ${site}` : "Promote"}
                      </button>
                    ) : null}
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {versions.length === 0 ? (
        <p class="hint">
          No versions yet: <code>npm run adapt</code>, then{" "}
          <code>npm run -s garbage -- models add &lt;file&gt;.onnx</code>.
        </p>
      ) : null}
      {selected ? <Comparison me={me} version={selected} site={site} onSite={setSite} /> : null}
      <div class="table-wrap">
        <table data-testid="site-thresholds">
          <caption>Per-site review thresholds, fitted on each site's reviewed images</caption>
          <thead>
            <tr>
              <th scope="col">Site</th>
              <th scope="col">Version</th>
              <th scope="col">Min confidence</th>
              <th scope="col">Max distance</th>
              <th scope="col">Fitted on</th>
              <th scope="col">Not flagged</th>
              <th scope="col">Est. accuracy when not flagged</th>
              <th scope="col">Computed</th>
            </tr>
          </thead>
          <tbody>
            {thresholds.map((t) => (
              <tr key={`${t.site} ${t.modelVersion}`}>
                <th scope="row">{t.site}</th>
                <td>{t.modelVersion}</td>
                <td>{t.minConfidence.toFixed(3)}</td>
                <td>{t.maxDistance?.toFixed(3) ?? "–"}</td>
                <td>{t.reviewed} reviewed</td>
                <td>{percent(t.coverage)}</td>
                <td>
                  {percent(t.unflaggedAccuracy)} (target {percent(t.target, 0)})
                </td>
                <td>{when(t.computedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
