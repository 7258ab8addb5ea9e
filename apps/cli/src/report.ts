import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { EvalMetrics, Prediction, SelectiveMetrics } from "@garbage/inference";
import sharp from "sharp";
import { type EvalIntervals, formatInterval } from "./intervals.js";

interface Bin {
  lower: number;
  upper: number;
  count: number;
  confidence: number;
  accuracy: number;
}

interface CurvePoint {
  coverage: number;
  accuracy: number;
  threshold: number;
}

export interface ReportInput {
  metrics: EvalMetrics & {
    ece: number;
    review: SelectiveMetrics;
    riskCoverage: CurvePoint[];
    intervals?: EvalIntervals;
  } & Record<string, unknown>;
  calibration: { ece: number; bins: Bin[] };
  predictions: (Prediction & { file: string; truth: string })[];
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * Writes the insight report as plain files (PNG, HTML, JSON, CSV) so the web UI can serve the directory
 * as it is and a person can open it from disk.
 */
export async function writeReport(dir: string, input: ReportInput): Promise<void> {
  await mkdir(path.join(dir, "thumbs"), { recursive: true });
  const { metrics } = input;
  await writeFile(path.join(dir, "metrics.json"), `${JSON.stringify(metrics, null, 2)}\n`);
  const csv = ["file,truth,predicted,confidence,needs_review,distance,top3"];
  for (const p of input.predictions) {
    const top = p.top.map((t) => `${t.label}:${t.confidence.toFixed(4)}`).join(" ");
    csv.push(
      [
        p.file,
        p.truth,
        p.label,
        p.confidence.toFixed(6),
        String(p.needsReview),
        p.review.distance === null ? "" : p.review.distance.toFixed(4),
        top,
      ]
        .map((v) => `"${v.replace(/"/g, '""')}"`)
        .join(","),
    );
  }
  await writeFile(path.join(dir, "predictions.csv"), `${csv.join("\n")}\n`);
  await sharp(Buffer.from(confusionSvg(metrics)))
    .png()
    .toFile(path.join(dir, "confusion.png"));
  await sharp(Buffer.from(reliabilitySvg(input.calibration)))
    .png()
    .toFile(path.join(dir, "reliability.png"));
  await sharp(Buffer.from(riskCoverageSvg(metrics.riskCoverage, metrics.review)))
    .png()
    .toFile(path.join(dir, "risk-coverage.png"));
  const wrong = input.predictions
    .filter((p) => p.label !== p.truth)
    .sort((a, b) => b.confidence - a.confidence);
  const cards: string[] = [];
  const misclassified: {
    file: string;
    truth: string;
    predicted: string;
    confidence: number;
    thumbnail: string;
  }[] = [];
  for (const [i, p] of wrong.entries()) {
    const thumb = `thumbs/${i}.jpg`;
    misclassified.push({
      file: path.basename(p.file),
      truth: p.truth,
      predicted: p.label,
      confidence: p.confidence,
      thumbnail: thumb,
    });
    await sharp(p.file)
      .rotate()
      .resize(192, 192, { fit: "inside" })
      .jpeg({ quality: 80 })
      .toFile(path.join(dir, thumb));
    const top = p.top.map((t) => `<li>${esc(t.label)} ${(100 * t.confidence).toFixed(1)}%</li>`).join("");
    cards.push(
      `<figure><img src="${thumb}" alt=""><figcaption><b>${esc(p.truth)}</b> &rarr; ${esc(p.label)}${p.needsReview ? " <mark>needs review</mark>" : ""}<ol>${top}</ol><small>${esc(path.basename(p.file))}</small></figcaption></figure>`,
    );
  }
  // What the web UI's Model page reads (the API serves this folder as EVAL_REPORT_DIR).
  await writeFile(path.join(dir, "misclassified.json"), `${JSON.stringify(misclassified, null, 2)}\n`);
  await writeFile(path.join(dir, "index.html"), page(metrics, cards));
}

function page(m: ReportInput["metrics"], cards: string[]): string {
  const f = (x: number) => x.toFixed(3);
  const rows = m.classes
    .map((c) => {
      const p = m.perClass[c];
      return p
        ? `<tr><td>${esc(c)}</td><td>${f(p.precision)} <small>${formatInterval(m.intervals?.perClass[c]?.precision, 3)}</small></td><td>${f(p.recall)} <small>${formatInterval(m.intervals?.perClass[c]?.recall, 3)}</small></td><td>${f(p.f1)}</td><td>${p.support}</td></tr>`
        : "";
    })
    .join("");
  return `<!doctype html><html><head><meta charset="utf-8"><title>garbage-sort evaluation</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child{text-align:left}.gallery{display:flex;flex-wrap:wrap;gap:12px}figure{width:200px;margin:0;font-size:13px}
figure img{max-width:192px;max-height:192px}ol{margin:4px 0;padding-left:20px}</style></head><body>
<h1>Evaluation: ${m.n} images</h1>
<p>accuracy <b>${f(m.accuracy)}</b> (95 % CI ${formatInterval(m.intervals?.accuracy)}, Wilson) · macro F1 <b>${f(m.macroF1)}</b> · weighted F1 ${f(m.weightedF1)} · ECE ${f(m.ece)}</p>
<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>${rows}</table>
<h2>Needs review</h2>
<p>${m.review.flagged} of ${m.review.n} flagged (${(100 * m.review.flaggedRate).toFixed(1)}%: ${m.review.lowConfidence} low confidence,
${m.review.unfamiliar} unlike the training data). The confident part covers ${(100 * m.review.coverage).toFixed(1)}% at accuracy
<b>${m.review.confidentAccuracy === null ? "-" : f(m.review.confidentAccuracy)}</b>.</p>
<img src="risk-coverage.png" alt="risk-coverage curve">
<h2>Confusion matrix</h2><img src="confusion.png" alt="confusion matrix">
<h2>Reliability</h2><img src="reliability.png" alt="reliability diagram">
<h2>Misclassified (${cards.length}), most confident first</h2><div class="gallery">${cards.join("\n")}</div>
</body></html>
`;
}

function confusionSvg(m: EvalMetrics): string {
  const k = m.classes.length;
  const cell = 64;
  const left = 110;
  const top = 40;
  const size = left + k * cell + 20;
  const max = Math.max(1, ...m.confusion.flat());
  const parts: string[] = [];
  m.confusion.forEach((row, i) => {
    const support = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((v, j) => {
      const shade = Math.round(255 - (200 * v) / max);
      const x = left + j * cell;
      const y = top + i * cell;
      parts.push(
        `<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="rgb(${shade},${shade},255)" stroke="#fff"/>`,
      );
      parts.push(
        `<text x="${x + cell / 2}" y="${y + cell / 2}" text-anchor="middle" font-size="15" fill="${v / max > 0.6 ? "#fff" : "#000"}">${v}</text>`,
      );
      parts.push(
        `<text x="${x + cell / 2}" y="${y + cell / 2 + 16}" text-anchor="middle" font-size="10" fill="${v / max > 0.6 ? "#eee" : "#555"}">${((100 * v) / support).toFixed(0)}%</text>`,
      );
    });
  });
  m.classes.forEach((c, i) => {
    parts.push(
      `<text x="${left - 6}" y="${top + i * cell + cell / 2 + 5}" text-anchor="end" font-size="13">${esc(c)}</text>`,
    );
    parts.push(
      `<text x="${left + i * cell + cell / 2}" y="${top - 8}" text-anchor="middle" font-size="12">${esc(c.slice(0, 9))}</text>`,
    );
  });
  const h = top + k * cell + 30;
  parts.push(
    `<text x="${left}" y="${h - 8}" font-size="12">rows: true class · columns: predicted (count, % of row)</text>`,
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${h}" font-family="sans-serif"><rect width="100%" height="100%" fill="#fff"/>${parts.join("")}</svg>`;
}

function reliabilitySvg(cal: { ece: number; bins: Bin[] }): string {
  const w = 420;
  const pad = 50;
  const plot = w - 2 * pad;
  const x = (v: number) => pad + v * plot;
  const y = (v: number) => pad + (1 - v) * plot;
  const parts = [
    `<rect x="${pad}" y="${pad}" width="${plot}" height="${plot}" fill="none" stroke="#999"/>`,
    `<line x1="${x(0)}" y1="${y(0)}" x2="${x(1)}" y2="${y(1)}" stroke="#999" stroke-dasharray="4"/>`,
  ];
  for (const b of cal.bins) {
    if (!b.count) continue;
    const bw = (b.upper - b.lower) * plot;
    parts.push(
      `<rect x="${x(b.lower)}" y="${y(b.accuracy)}" width="${bw}" height="${y(0) - y(b.accuracy)}" fill="#4a7bd0" stroke="#fff"/>`,
    );
    parts.push(`<circle cx="${x(b.confidence)}" cy="${y(b.confidence)}" r="3" fill="#d04a4a"/>`);
  }
  for (const t of [0, 0.5, 1]) {
    parts.push(`<text x="${x(t)}" y="${y(0) + 16}" text-anchor="middle" font-size="11">${t}</text>`);
    parts.push(`<text x="${pad - 6}" y="${y(t) + 4}" text-anchor="end" font-size="11">${t}</text>`);
  }
  parts.push(
    `<text x="${w / 2}" y="${w - 12}" text-anchor="middle" font-size="12">confidence (bars: accuracy per bin)</text>`,
  );
  parts.push(
    `<text x="${w / 2}" y="30" text-anchor="middle" font-size="14">Reliability · ECE ${cal.ece.toFixed(3)}</text>`,
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${w}" font-family="sans-serif"><rect width="100%" height="100%" fill="#fff"/>${parts.join("")}</svg>`;
}

/** Accuracy of the most confident share of the images against that share; the dot is the review flag. */
function riskCoverageSvg(points: CurvePoint[], review: SelectiveMetrics): string {
  const w = 420;
  const pad = 50;
  const plot = w - 2 * pad;
  const lo = Math.min(0.5, ...points.map((p) => p.accuracy));
  const x = (v: number) => pad + v * plot;
  const y = (v: number) => pad + (1 - (v - lo) / (1 - lo)) * plot;
  const line = points.map(
    (p, i) => `${i ? "L" : "M"}${x(p.coverage).toFixed(1)},${y(p.accuracy).toFixed(1)}`,
  );
  const parts = [
    `<rect x="${pad}" y="${pad}" width="${plot}" height="${plot}" fill="none" stroke="#999"/>`,
    `<path d="${line.join("")}" fill="none" stroke="#4a7bd0" stroke-width="2"/>`,
  ];
  if (review.confidentAccuracy !== null) {
    parts.push(
      `<circle cx="${x(review.coverage)}" cy="${y(review.confidentAccuracy)}" r="5" fill="#d04a4a"/>`,
    );
  }
  for (const t of [0, 0.5, 1]) {
    parts.push(`<text x="${x(t)}" y="${y(lo) + 16}" text-anchor="middle" font-size="11">${t}</text>`);
  }
  for (const t of [lo, (lo + 1) / 2, 1]) {
    parts.push(
      `<text x="${pad - 6}" y="${y(t) + 4}" text-anchor="end" font-size="11">${t.toFixed(2)}</text>`,
    );
  }
  parts.push(
    `<text x="${w / 2}" y="${w - 12}" text-anchor="middle" font-size="12">coverage (most confident first); dot: not flagged</text>`,
  );
  parts.push(`<text x="${w / 2}" y="30" text-anchor="middle" font-size="14">Risk-coverage</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${w}" font-family="sans-serif"><rect width="100%" height="100%" fill="#fff"/>${parts.join("")}</svg>`;
}
