import { useEffect, useState } from "preact/hooks";
import { describe, download, getJson, percent, query } from "../api";
import { ChartCanvas } from "../components/chart";
import { ErrorBox, Field, SiteSelect } from "../components/common";
import { Quality } from "../components/quality";
import { colour } from "../palette";
import type { Me, Stats } from "../types";

const HOUR = 3_600_000;
// datetime-local wants local time without a zone.
const localInput = (ms: number) => {
  const d = new Date(ms);
  return new Date(ms - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
};
const iso = (local: string) => (local ? new Date(local).toISOString() : undefined);

function Summary({ s }: { s: Stats }) {
  const facts: [string, string][] = [
    ["Images", String(s.total)],
    ["Classified", String(s.classified)],
    ["Failed", String(s.failed)],
    ["Needed review", `${s.needsReview} (${percent(s.reviewRate)})`],
    ["Reviewed", String(s.reviewed ?? "–")],
    ["Changed by reviewers", String(s.changed ?? "–")],
    ["Changed rate", percent(s.changedRate)],
  ];
  return (
    <dl class="facts stats-summary" data-testid="stats-summary">
      {facts.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

function Series({ s }: { s: Stats }) {
  const labels = s.classes.map((c) => c.label);
  const buckets = s.series.filter((b) => b.total > 0);
  if (buckets.length === 0) return null;
  const fmt = (b: string) =>
    new Date(b).toLocaleString(undefined, s.bucket === "day" ? { dateStyle: "short" } : {});
  return (
    <ChartCanvas
      label={`Images per ${s.bucket} by class, ${buckets.length} ${s.bucket}s with images`}
      height={280}
      deps={[s]}
      make={() => ({
        type: "bar",
        data: {
          labels: buckets.map((b) => fmt(b.bucket)),
          datasets: labels.map((label, i) => ({
            label,
            data: buckets.map((b) => b.counts[label] ?? 0),
            backgroundColor: colour(i),
          })),
        },
        options: {
          maintainAspectRatio: false,
          animation: false,
          scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
        },
      })}
    />
  );
}

/** The material stream of a site/line over a time range, counting reviewers' corrections. */
export function StatsPage({ me }: { me: Me }) {
  const now = Date.now();
  const [site, setSite] = useState(me.sites?.length === 1 ? (me.sites[0] as string) : "");
  const [line, setLine] = useState("");
  const [bucket, setBucket] = useState<"hour" | "day">("hour");
  const [from, setFrom] = useState(localInput(now - 24 * HOUR));
  const [to, setTo] = useState(localInput(now + HOUR));
  const [stats, setStats] = useState<Stats | null>(null);
  const [error, setError] = useState<unknown>(null);
  const params = () => query({ site, line, bucket, from: iso(from), to: iso(to) });

  const load = () =>
    getJson<Stats>(`/v1/stats${params()}`)
      .then((s) => {
        setStats(s);
        setError(null);
      })
      .catch(setError);
  useEffect(() => void load(), []);

  return (
    <section>
      <h1>Statistics</h1>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void load();
        }}
      >
        <SiteSelect me={me} value={site} onChange={setSite} />
        <Field label="Line">
          <input value={line} onInput={(e) => setLine(e.currentTarget.value)} />
        </Field>
        <Field label="From">
          <input type="datetime-local" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
        </Field>
        <Field label="To">
          <input type="datetime-local" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
        </Field>
        <Field label="Per">
          <select value={bucket} onChange={(e) => setBucket(e.currentTarget.value as "hour" | "day")}>
            <option value="hour">hour</option>
            <option value="day">day</option>
          </select>
        </Field>
        <button type="submit">Show</button>
        <button
          type="button"
          onClick={() =>
            void download(`/v1/stats.csv${params()}`).catch((err) => setError(new Error(describe(err))))
          }
        >
          Export CSV
        </button>
      </form>
      <ErrorBox error={error} />
      {stats ? (
        <>
          <Summary s={stats} />
          <div class="table-wrap">
            <table data-testid="stats-classes">
              <caption>Per class</caption>
              <thead>
                <tr>
                  <th scope="col">Class</th>
                  <th scope="col">Count</th>
                  <th scope="col">Share</th>
                  <th scope="col">Needed review</th>
                </tr>
              </thead>
              <tbody>
                {stats.classes.map((c, i) => (
                  <tr key={c.label}>
                    <th scope="row">
                      <span class="swatch" style={{ background: colour(i) }} /> {c.label}
                    </th>
                    <td>{c.count}</td>
                    <td>
                      <span class="bar" style={{ width: `${Math.round(c.share * 100)}%` }} />{" "}
                      {percent(c.share)}
                    </td>
                    <td>{c.needsReview}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {stats.quality && <Quality q={stats.quality} />}
          <h2>Per {stats.bucket}</h2>
          <Series s={stats} />
        </>
      ) : null}
    </section>
  );
}
