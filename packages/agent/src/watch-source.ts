import { type FSWatcher, watch } from "node:fs";
import { readdir, readFile, stat, unlink } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "@garbage/log";
import {
  type CapturedFrom,
  compilePattern,
  exifCapturedAt,
  IMAGE_EXTENSIONS,
  type Labels,
  labelsOf,
  looksComplete,
  type Pattern,
} from "./metadata";
import type { AgentMetrics } from "./metrics";
import type { Spool } from "./spool";

export interface WatchOptions {
  root: string;
  /** Relative folder pattern ('{site}/{line}/{camera}'); files may sit at any depth without one. */
  pathPattern?: string;
  defaults: Partial<Labels>;
  /** A file is complete once its size and mtime held still this long (and, for JPEG/PNG, it ends right). */
  settleMs: number;
  scanMs: number;
}

interface Seen {
  size: number;
  mtimeMs: number;
  since: number;
}

// Writers' temporary names: a file that is being written under one of them is renamed when done.
/** Files read per scan. */
const SCAN_BATCH = 64;

const TEMPORARY = /(^\.|~$|\.(tmp|part|partial|crdownload|swp)$)/i;

/**
 * A folder inbox. Scans every scanMs (and at once when fs.watch reports a change: events alone miss files on
 * network filesystems and during start-up), takes each image once it is complete, spools the ready ones in
 * capture order and then removes them from the folder: the spool now holds them.
 */
export class FolderWatcher {
  private readonly seen = new Map<string, Seen>();
  private readonly pattern: Pattern | null;
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private scanning: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(
    private readonly opts: WatchOptions,
    private readonly spool: Spool,
    private readonly metrics: AgentMetrics,
    private readonly log: Logger,
  ) {
    this.pattern = opts.pathPattern ? compilePattern(opts.pathPattern.replace(/\/+$/, "")) : null;
  }

  start(): void {
    this.timer = setInterval(() => this.kick(), this.opts.scanMs);
    try {
      this.watcher = watch(this.opts.root, { recursive: true }, () => this.kick());
      this.watcher.on("error", () => {});
    } catch (err) {
      this.log.warn({ err, dir: this.opts.root }, "fs.watch unavailable, scanning only");
    }
    this.kick();
  }

  /** Stops scanning and waits for a scan in progress (its accepted files are spooled and removed). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.watcher?.close();
    await this.scanning;
  }

  private kick(): void {
    if (this.stopped) return;
    if (this.scanning) {
      this.again = true;
      return;
    }
    this.scanning = this.scan()
      .catch((err: unknown) => this.log.error({ err, dir: this.opts.root }, "scan failed"))
      .finally(() => {
        this.scanning = null;
        if (this.again) {
          this.again = false;
          setTimeout(() => this.kick(), 20);
        }
      });
  }

  private async list(dir: string, out: string[]): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (TEMPORARY.test(e.name)) continue;
      const full = path.join(dir, e.name);
      if (e.isDirectory()) await this.list(full, out);
      else if (e.isFile() && IMAGE_EXTENSIONS.has(path.extname(e.name).toLowerCase())) out.push(full);
    }
  }

  private async scan(): Promise<void> {
    const files: string[] = [];
    await this.list(this.opts.root, files);
    const now = Date.now();
    const present = new Set(files);
    for (const f of this.seen.keys()) if (!present.has(f)) this.seen.delete(f);
    const settled: { file: string; size: number; mtime: Date; held: number }[] = [];
    for (const file of files) {
      const st = await stat(file).catch(() => null);
      if (!st) continue;
      const prev = this.seen.get(file);
      if (!prev || prev.size !== st.size || prev.mtimeMs !== st.mtimeMs) {
        this.seen.set(file, { size: st.size, mtimeMs: st.mtimeMs, since: now });
        if (this.opts.settleMs > 0) continue;
      }
      const held = now - (this.seen.get(file)?.since ?? now);
      if (held >= this.opts.settleMs && st.size > 0)
        settled.push({ file, size: st.size, mtime: st.mtime, held });
    }
    // Memory stays bounded when thousands land at once: the oldest files first, the rest on the next scans.
    settled.sort((a, b) => a.mtime.getTime() - b.mtime.getTime() || (a.file < b.file ? -1 : 1));
    if (settled.length > SCAN_BATCH) this.again = true;
    const ready: { file: string; bytes: Buffer; at: Date; from: CapturedFrom; labels: Labels }[] = [];
    for (const { file, size, mtime, held } of settled.slice(0, SCAN_BATCH)) {
      const bytes = await readFile(file).catch(() => null);
      if (!bytes || bytes.length !== size) continue;
      // A writer that paused longer than settleMs mid-file: wait for its end, but not for ever (ten times
      // settleMs, at least 30 s: a truncated photo is still a photo the API records, as failed).
      if (!looksComplete(bytes) && held < Math.max(30_000, 10 * this.opts.settleMs)) continue;
      const exif = await exifCapturedAt(bytes);
      const labels = this.labelsFor(file);
      if (!labels) continue;
      ready.push({ file, bytes, at: exif ?? mtime, from: exif ? "exif" : "file", labels });
    }
    // Capture order across everything that became ready in this scan.
    ready.sort((a, b) => a.at.getTime() - b.at.getTime() || (a.file < b.file ? -1 : 1));
    for (const r of ready) {
      if (this.stopped) return;
      const outcome = await this.spool.accept(r.bytes, {
        ...r.labels,
        filename: path.basename(r.file),
        capturedAt: r.at.toISOString(),
        capturedFrom: r.from,
        source: `watch:${this.opts.root}`,
      });
      if (outcome === "full") {
        this.metrics.full.set(1);
        // Left in the folder: it is not lost, and the next scan tries again.
        this.log.warn({ file: r.file }, "spool full: the file stays in the folder until there is room");
        return;
      }
      this.metrics.full.set(0);
      this.metrics.accepted.inc({ source: "watch", outcome });
      await unlink(r.file).catch((err: unknown) => this.log.warn({ err, file: r.file }, "could not remove"));
      this.seen.delete(r.file);
      this.log.debug({ file: r.file, outcome }, "file taken");
    }
  }

  private labelsFor(file: string): Labels | null {
    const rel = path.relative(this.opts.root, path.dirname(file)).split(path.sep).join("/");
    if (!this.pattern) return labelsOf(null, this.opts.defaults);
    const found = this.pattern.match(rel);
    if (!found) {
      if (!this.warned.has(rel)) this.log.warn({ dir: rel }, "folder does not match --path-pattern; ignored");
      this.warned.add(rel);
      return null;
    }
    return labelsOf(found, this.opts.defaults);
  }

  private readonly warned = new Set<string>();
}
