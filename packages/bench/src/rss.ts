import { readFileSync, writeFileSync } from "node:fs";

const MiB = 1024;

/** A field of /proc/<pid>/status in KiB (VmHWM: peak resident set, VmRSS: resident now); undefined if gone. */
export function statusKiB(pid: number | "self", field: "VmHWM" | "VmRSS"): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

let resettable: boolean | undefined;

/**
 * Starts a new peak-RSS window for this process: writing 5 to /proc/self/clear_refs resets VmHWM to the
 * current RSS (Linux 4.0+), so each suite reports its own peak instead of the run's. Without it (another OS,
 * an older kernel), a sampler takes over.
 */
export function startPeakWindow(): () => number {
  if (resettable !== false) {
    try {
      writeFileSync("/proc/self/clear_refs", "5");
      resettable = true;
    } catch {
      resettable = false;
    }
  }
  if (resettable) return () => (statusKiB("self", "VmHWM") ?? process.memoryUsage().rss / 1024) / MiB;
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  timer.unref();
  return () => {
    clearInterval(timer);
    return Math.max(peak, process.memoryUsage().rss) / 1024 / MiB;
  };
}

/** Measures this process's peak RSS (MiB) while `fn` runs. */
export async function withPeakRss<T>(fn: () => Promise<T>): Promise<{ result: T; peakRssMiB: number }> {
  const stop = startPeakWindow();
  const result = await fn();
  return { result, peakRssMiB: stop() };
}

/**
 * Peak RSS of child processes: each child's VmHWM, read while it still runs (call before stopping it), plus
 * a 100 ms sampler of the sum of their VmRSS, the peak they held together.
 */
export class ChildRss {
  private readonly pids = new Set<number>();
  private readonly hwm = new Map<number, number>();
  private peakSum = 0;
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.timer = setInterval(() => this.sample(), 100);
    this.timer.unref();
  }

  add(pid: number): void {
    this.pids.add(pid);
  }

  private sample(): void {
    let sum = 0;
    for (const pid of this.pids) {
      sum += statusKiB(pid, "VmRSS") ?? 0;
      const h = statusKiB(pid, "VmHWM");
      if (h !== undefined) this.hwm.set(pid, h);
    }
    this.peakSum = Math.max(this.peakSum, sum);
  }

  /** Takes a last sample and stops; call while the children are still alive. */
  finish(): { sumMiB: number; maxPerProcessMiB: number } {
    this.sample();
    clearInterval(this.timer);
    const hwm = [...this.hwm.values()];
    // The sampled sum can miss a spike shorter than 100 ms; each process's VmHWM cannot.
    return { sumMiB: this.peakSum / MiB, maxPerProcessMiB: Math.max(0, ...hwm) / MiB };
  }
}
