import { useEffect, useState } from "preact/hooks";
import { getJson, percent, query } from "../api";
import { ErrorBox, Field } from "../components/common";
import type { Me, ModelComparison, ModelVersionInfo } from "../types";

const signed = (x: number) => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)} pt`;

/** The sites a comparison can be narrowed to: the version's scope, within what the key sees. */
function siteChoices(me: Me, v: ModelVersionInfo): string[] {
  const mine = me.sites ?? me.visibleSites;
  return v.sites ? v.sites.filter((s) => me.sites === null || mine.includes(s)) : mine;
}

/**
 * A shadow or candidate version side by side with what serves its sites now: accuracy on reviewed images it
 * never trained on, agreement on live images, per-class recall, the review rate each would produce.
 */
export function Comparison(props: {
  me: Me;
  version: ModelVersionInfo;
  site: string;
  onSite: (site: string) => void;
}) {
  const { me, version } = props;
  const [c, setC] = useState<ModelComparison | null>(null);
  const [error, setError] = useState<unknown>(null);
  const choices = siteChoices(me, version);
  // A key for several (not all) sites must name one: the API has no "all of my sites" comparison.
  const site = props.site || (me.sites !== null && me.sites.length > 1 ? (choices[0] ?? "") : "");
  useEffect(() => {
    setC(null);
    setError(null);
    getJson<ModelComparison>(`/v1/models/${version.id}/compare${query({ site })}`)
      .then(setC)
      .catch(setError);
  }, [version.id, site]);
  return (
    <div data-testid="model-compare">
      <h3>
        {version.modelVersion} ({version.state}) against the active version
      </h3>
      <div class="row">
        <Field label="Site">
          <select value={site} onChange={(e) => props.onSite(e.currentTarget.value)}>
            {me.sites !== null && me.sites.length > 1 ? null : <option value="">its whole scope</option>}
            {choices.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </Field>
      </div>
      <ErrorBox error={error} />
      {c ? (
        <>
          <div class="table-wrap">
            <table>
              <caption>
                Reviewed after its data cut-off (
                {version.dataUntil ? new Date(version.dataUntil).toLocaleDateString() : "none"}
                ): {c.reviewed.images} images; live images it shadowed: {c.live.images}
              </caption>
              <thead>
                <tr>
                  <th scope="col" />
                  <th scope="col">Candidate</th>
                  <th scope="col">Active</th>
                </tr>
              </thead>
              <tbody>
                <tr>
                  <th scope="row">Accuracy on unseen reviewed images</th>
                  <td>
                    {percent(c.reviewed.images ? c.reviewed.candidate.accuracy : null)} (
                    {c.reviewed.candidate.correct})
                  </td>
                  <td>
                    {percent(c.reviewed.images ? c.reviewed.active.accuracy : null)} (
                    {c.reviewed.active.correct})
                  </td>
                </tr>
                <tr>
                  <th scope="row">Review rate on live images</th>
                  <td>{percent(c.live.images ? c.live.candidateReviewRate : null)}</td>
                  <td>{percent(c.live.images ? c.live.activeReviewRate : null)}</td>
                </tr>
                <tr>
                  <th scope="row">Agreement on live images</th>
                  <td colSpan={2}>{percent(c.live.images ? c.live.agreement : null)}</td>
                </tr>
              </tbody>
            </table>
          </div>
          {c.reviewed.perClass.length ? (
            <div class="table-wrap">
              <table>
                <caption>Recall per reviewed class</caption>
                <thead>
                  <tr>
                    <th scope="col">Class</th>
                    <th scope="col">Images</th>
                    <th scope="col">Candidate</th>
                    <th scope="col">Active</th>
                    <th scope="col">Change</th>
                  </tr>
                </thead>
                <tbody>
                  {c.reviewed.perClass.map((k) => (
                    <tr key={k.label}>
                      <th scope="row">{k.label}</th>
                      <td>{k.n}</td>
                      <td>{percent(k.candidateRecall)}</td>
                      <td>{percent(k.activeRecall)}</td>
                      <td>{signed(k.candidateRecall - k.activeRecall)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : null}
          {c.changes.length ? (
            <p>
              Labels it would change: {c.changes.map((ch) => `${ch.from} → ${ch.to} (${ch.n})`).join(", ")}
            </p>
          ) : null}
        </>
      ) : null}
    </div>
  );
}
