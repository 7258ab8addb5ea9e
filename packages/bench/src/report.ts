import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { type Generated, REPO_ROOT } from "./images.js";
import type { Sweep } from "./options.js";
import type { Services } from "./services.js";
import type { Latency } from "./stats.js";

export const SUITES = ["inference", "preprocess", "cli", "pipeline", "classify"] as const;
export type SuiteName = (typeof SUITES)[number];

export interface ModelChoice {
  /** "fp32", "int8" or the file name of a model given by path. */
  label: string;
  path: string;
}

export interface Measurement {
  suite: SuiteName;
  case: string;
  /** null: the measurement does not depend on the model (preprocess). */
  model: string | null;
  imagesPerSecond?: number;
  latencyMs?: Latency;
  /** What one latency sample is: an image, a session.run, a batch of 16, a request, a poll. */
  latencyUnit?: string;
  /** This process, over the case. */
  peakRssMiB?: number;
  /** Child processes (API, workers) together, over the case. */
  childPeakRssMiB?: number;
  extra?: Record<string, number | string>;
}

export interface SuiteContext {
  model: ModelChoice;
  threads: number;
  budgetMs: number;
  generated: Generated;
  /** Everything measured so far in this run (pipeline reads the cli number). */
  results: readonly Measurement[];
  pipelineImages: number | undefined;
  sweep: Sweep;
  /** Postgres, Redis and the store for pipeline and classify, opened on first use. */
  services: () => Promise<Services>;
  log: (line: string) => void;
}

export interface Machine {
  cpu: string;
  cores: number;
  flags: { avx512_vnni: boolean; avx512_bf16: boolean; avx2: boolean };
  memoryGiB: number;
  node: string;
  kernel: string;
}

export function machine(): Machine {
  let cpuinfo = "";
  try {
    cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  } catch {}
  const flags = new Set((/^flags\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? "").trim().split(/\s+/));
  return {
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? "unknown",
    cores: os.availableParallelism(),
    flags: {
      avx512_vnni: flags.has("avx512_vnni"),
      avx512_bf16: flags.has("avx512_bf16"),
      avx2: flags.has("avx2"),
    },
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: os.release(),
  };
}

const num = (v: number | undefined, digits = 1) => (v === undefined ? "" : v.toFixed(digits));
const ratio = (a: number | undefined, b: number | undefined) =>
  a !== undefined && b !== undefined && a > 0 ? (b / a).toFixed(2) : "";

const HEAD = [
  "suite",
  "case",
  "model",
  "images/s",
  "p50 ms",
  "p95 ms",
  "p99 ms",
  "per",
  "RSS MiB",
  "child MiB",
  "notes",
];

function row(m: Measurement): string[] {
  const l = m.latencyMs;
  const notes = Object.entries(m.extra ?? {}).map(
    ([k, v]) => `${k}=${typeof v === "number" ? +v.toFixed(3) : v}`,
  );
  return [
    m.suite,
    m.case,
    m.model ?? "-",
    num(m.imagesPerSecond),
    num(l?.p50),
    num(l?.p95),
    num(l?.p99),
    l ? (m.latencyUnit ?? "") : "",
    num(m.peakRssMiB, 0),
    num(m.childPeakRssMiB, 0),
    notes.join(" "),
  ];
}

/** One line per suite, case and model; with several models a ratio line (model n / first model) follows. */
export function table(results: readonly Measurement[], models: readonly ModelChoice[]): string {
  const rows: string[][] = [];
  const groups = new Map<string, Measurement[]>();
  for (const m of results) {
    const key = `${m.suite}\u0000${m.case}`;
    groups.set(key, [...(groups.get(key) ?? []), m]);
  }
  for (const group of groups.values()) {
    rows.push(...group.map(row));
    const base = group.find((m) => m.model === models[0]?.label);
    for (const other of group) {
      if (!base || other === base || other.model === null) continue;
      rows.push([
        "",
        "",
        `${other.model}/${base.model}`,
        ratio(base.imagesPerSecond, other.imagesPerSecond),
        ratio(base.latencyMs?.p50, other.latencyMs?.p50),
        ratio(base.latencyMs?.p95, other.latencyMs?.p95),
        ratio(base.latencyMs?.p99, other.latencyMs?.p99),
        "",
        ratio(base.peakRssMiB, other.peakRssMiB),
        ratio(base.childPeakRssMiB, other.childPeakRssMiB),
        "ratio",
      ]);
    }
  }
  const all = [HEAD, ...rows];
  const widths = HEAD.map((_, c) => Math.max(...all.map((r) => (r[c] ?? "").length)));
  const numeric = new Set([3, 4, 5, 6, 8, 9]);
  return all
    .map((r) =>
      r
        .map((cell, c) => (numeric.has(c) ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export function header(
  m: Machine,
  date: Date,
  models: readonly ModelChoice[],
  threads: number,
  load: readonly number[],
): string {
  const flags = Object.entries(m.flags)
    .map(([k, v]) => `${k} ${v ? "yes" : "no"}`)
    .join(", ");
  return [
    `garbage-sort bench, ${date.toISOString()}`,
    `machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; ${flags}; node ${m.node}, linux ${m.kernel}`,
    `models: ${models.map((x) => `${x.label} (${path.relative(REPO_ROOT, x.path)})`).join(", ")}; --threads ${threads}`,
    `load average at the start: ${load.map((l) => l.toFixed(2)).join(" ")}`,
  ].join("\n");
}
