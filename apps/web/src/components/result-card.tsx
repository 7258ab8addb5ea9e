import { percent } from "../api";
import type { Scored } from "../types";
import { Donut } from "./chart";

const REASONS: Record<string, string> = {
  low_confidence: "low confidence",
  unfamiliar: "unlike the training data",
};
export const reasonWords = (reasons: string[]) => reasons.map((r) => REASONS[r] ?? r).join(" and ");

/** A clear, text (not colour-only) warning that a person should check this label. */
export function ReviewWarning({ reasons }: { reasons: string[] }) {
  return (
    <p class="warning" role="status">
      <strong>⚠ Needs review</strong>
      {reasons.length ? `: ${reasonWords(reasons)}` : ""}
    </p>
  );
}

export interface CardResult {
  label: string;
  confidence: number;
  top: Scored[];
  needsReview: boolean;
  reasons: string[];
}

/** One classified image: its class, the top-3 donut and the review warning. */
export function ResultCard(props: {
  name: string;
  image: preact.ComponentChildren;
  result?: CardResult | null;
  error?: string | null;
  pending?: boolean;
}) {
  const { result } = props;
  return (
    <article class={`card result${result?.needsReview ? " needs-review" : ""}`} data-testid="result-card">
      <div class="card-head">
        <div class="thumb">{props.image}</div>
        <div class="body">
          <h3 class="filename">{props.name}</h3>
          {props.error ? (
            <p class="error" role="alert">
              {props.error}
            </p>
          ) : result ? (
            <>
              <p class="label">
                <span class="class-name">{result.label}</span>{" "}
                <span class="conf">{percent(result.confidence)}</span>
              </p>
              {result.needsReview ? <ReviewWarning reasons={result.reasons} /> : null}
            </>
          ) : (
            <p class="pending" aria-busy="true">
              {props.pending ? "Classifying…" : "Waiting…"}
            </p>
          )}
        </div>
      </div>
      {result && !props.error ? <Donut top={result.top} /> : null}
    </article>
  );
}
