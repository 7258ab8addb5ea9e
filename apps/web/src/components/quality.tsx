import { percent } from "../api";
import type { Interval, Quality as QualityData } from "../types";

const range = (i: Interval | null) => (i ? `${percent(i.low)} – ${percent(i.high)}` : "");

/**
 * One class's shares on a 0-100 % scale: the raw share (the model's labels) as a grey tick, the audit-corrected
 * estimate as a dot with its 95 % interval as an error bar, so a gap between them reads at a glance.
 */
function ErrorBar({ raw, share, max }: { raw: number; share: Interval | null; max: number }) {
  const x = (v: number) => `${(100 * v) / max}%`;
  return (
    <svg
      class="error-bar"
      width="160"
      height="16"
      role="img"
      aria-label={`raw ${percent(raw)}, corrected ${share ? `${percent(share.estimate)} (${range(share)})` : "not yet estimated"}`}
    >
      <line x1="0" x2="100%" y1="8" y2="8" stroke="#ddd" />
      <line x1={x(raw)} x2={x(raw)} y1="1" y2="15" stroke="#999" stroke-width="3" />
      {share && (
        <>
          <line x1={x(share.low)} x2={x(share.high)} y1="8" y2="8" stroke="#1f5fbf" stroke-width="2" />
          <line x1={x(share.low)} x2={x(share.low)} y1="4" y2="12" stroke="#1f5fbf" stroke-width="2" />
          <line x1={x(share.high)} x2={x(share.high)} y1="4" y2="12" stroke="#1f5fbf" stroke-width="2" />
          <circle cx={x(share.estimate)} cy="8" r="4" fill="#1f5fbf" />
        </>
      )}
    </svg>
  );
}

/** What the blind audits say about the numbers above them: accuracy and corrected shares with intervals. */
export function Quality({ q }: { q: QualityData }) {
  const max = Math.min(1, Math.max(0.05, ...q.classes.flatMap((c) => [c.raw, c.share?.high ?? 0])) * 1.1);
  return (
    <section data-testid="stats-quality">
      <h2>How right are these numbers?</h2>
      <dl class="facts">
        <div>
          <dt>Estimated accuracy</dt>
          <dd data-testid="quality-accuracy">
            {q.accuracy ? `${percent(q.accuracy.estimate)} (${range(q.accuracy)})` : "not yet"}
          </dd>
        </div>
        <div>
          <dt>Accuracy of unflagged images</dt>
          <dd>
            {q.unflagged.accuracy
              ? `${percent(q.unflagged.accuracy.estimate)} (${range(q.unflagged.accuracy)})`
              : "not yet"}
          </dd>
        </div>
        <div>
          <dt>Audits answered</dt>
          <dd data-testid="quality-audited">{q.audited}</dd>
        </div>
        <div>
          <dt>Audits waiting</dt>
          <dd data-testid="quality-backlog">{q.backlog}</dd>
        </div>
      </dl>
      <p class="hint" data-testid="quality-note">
        {q.accuracy
          ? `Ranges are 95 % intervals from ${q.audited} blind audits. About ${q.moreAuditsToHalve} more answered audits would halve their width.`
          : `Estimates need ${q.needed} more answered audit${q.needed === 1 ? "" : "s"} (at least ${q.minAudits}): answer the blind audits on the Review page.`}{" "}
        Method: {q.method}.
      </p>
      <div class="table-wrap">
        <table data-testid="quality-classes">
          <caption>
            Shares: the model's labels (grey) and corrected by the audits (blue, 95 % interval)
          </caption>
          <thead>
            <tr>
              <th scope="col">Class</th>
              <th scope="col">Raw share</th>
              <th scope="col">Corrected share</th>
              <th scope="col" aria-label="Shares on a scale" />
              <th scope="col">Precision</th>
            </tr>
          </thead>
          <tbody>
            {q.classes.map((c) => (
              <tr key={c.label}>
                <th scope="row">{c.label}</th>
                <td>{percent(c.raw)}</td>
                <td>{c.share ? `${percent(c.share.estimate)} (${range(c.share)})` : "–"}</td>
                <td>
                  <ErrorBar raw={c.raw} share={c.share} max={max} />
                </td>
                <td>{c.precision ? `${percent(c.precision.estimate)} (${range(c.precision)})` : "–"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
