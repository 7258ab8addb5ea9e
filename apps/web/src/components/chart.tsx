import { useEffect, useRef } from "preact/hooks";
import { colour } from "../palette";

type ChartModule = typeof import("../charts");
let loading: Promise<ChartModule> | null = null;
export const loadCharts = () => {
  loading ??= import("../charts");
  return loading;
};

/**
 * A Chart.js canvas drawn from `make` once the chart chunk has loaded; the caller gives the same information
 * as text beside it (the canvas is only a picture to screen readers).
 */
export function ChartCanvas({
  make,
  label,
  deps,
  height = 240,
}: {
  make: (charts: ChartModule) => import("chart.js").ChartConfiguration;
  label: string;
  deps: unknown[];
  height?: number;
}) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    let chart: { destroy(): void } | null = null;
    let live = true;
    void loadCharts().then((charts) => {
      if (!live || !ref.current) return;
      chart = new charts.Chart(ref.current, make(charts));
    });
    return () => {
      live = false;
      chart?.destroy();
    };
  }, deps);
  return (
    <div class="chart" style={{ height: `${height}px` }}>
      <canvas ref={ref} role="img" aria-label={label} />
    </div>
  );
}

/** The top-3 as a donut, with the percentages as text beside it. */
export function Donut({ top }: { top: { label: string; confidence: number }[] }) {
  const rest = Math.max(0, 1 - top.reduce((s, t) => s + t.confidence, 0));
  const slices = rest > 0.005 ? [...top, { label: "other", confidence: rest }] : top;
  const text = slices.map((t) => `${t.label} ${(t.confidence * 100).toFixed(1)} %`).join(", ");
  return (
    <div class="donut">
      <ChartCanvas
        label={`Top classes: ${text}`}
        height={140}
        deps={[text]}
        make={() => ({
          type: "doughnut",
          data: {
            labels: slices.map((s) => s.label),
            datasets: [
              {
                data: slices.map((s) => Math.round(s.confidence * 1000) / 10),
                backgroundColor: slices.map((s, i) => (s.label === "other" ? "#ccc" : colour(i))),
              },
            ],
          },
          options: {
            maintainAspectRatio: false,
            animation: false,
            plugins: { legend: { display: false } },
          },
        })}
      />
      <ol class="top">
        {slices.map((t, i) => (
          <li key={t.label}>
            <span class="swatch" style={{ background: t.label === "other" ? "#ccc" : colour(i) }} />
            <span>{t.label}</span> <strong>{(t.confidence * 100).toFixed(1)} %</strong>
          </li>
        ))}
      </ol>
    </div>
  );
}
