import { readdir, readFile, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { z } from "@hono/zod-openapi";

/** What `garbage eval --report <dir>` writes that the Model page shows (apps/cli/src/report.ts). */
const metricsFile = z
  .object({ classes: z.array(z.string()), confusion: z.array(z.array(z.number())) })
  .passthrough();
const misclassifiedFile = z.array(
  z.object({
    file: z.string(),
    truth: z.string(),
    predicted: z.string(),
    confidence: z.number(),
    thumbnail: z.string(),
  }),
);

export interface EvalReport {
  dir: string;
  generatedAt: string;
  metrics: Record<string, unknown>;
  confusion: { labels: string[]; matrix: number[][] };
  misclassified: z.infer<typeof misclassifiedFile>;
}

/**
 * The report in `root` (a report folder, or a folder of them: the newest metrics.json wins), or null when
 * there is none or it cannot be read. Read per request: reports are small and a new eval shows at once.
 */
export async function latestReport(root: string | null): Promise<EvalReport | null> {
  if (!root) return null;
  const dirs = [root];
  try {
    for (const entry of await readdir(root, { withFileTypes: true })) {
      if (entry.isDirectory()) dirs.push(path.join(root, entry.name));
    }
  } catch {
    return null;
  }
  let best: { dir: string; mtime: Date } | null = null;
  for (const dir of dirs) {
    const info = await stat(path.join(dir, "metrics.json")).catch(() => null);
    if (info?.isFile() && (!best || info.mtime > best.mtime)) best = { dir, mtime: info.mtime };
  }
  if (!best) return null;
  try {
    const { classes, confusion, ...rest } = metricsFile.parse(
      JSON.parse(await readFile(path.join(best.dir, "metrics.json"), "utf8")),
    );
    const wrong = await readFile(path.join(best.dir, "misclassified.json"), "utf8").then(
      (text) => misclassifiedFile.parse(JSON.parse(text)),
      () => [],
    );
    return {
      dir: best.dir,
      generatedAt: best.mtime.toISOString(),
      metrics: rest,
      confusion: { labels: classes, matrix: confusion },
      misclassified: wrong,
    };
  } catch {
    return null;
  }
}

const TYPES: Record<string, string> = {
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".json": "application/json",
  ".csv": "text/csv; charset=utf-8",
  ".html": "text/html; charset=utf-8",
};

/**
 * A file inside the report folder, or null: only known file types, no `..`, no hidden files, and the real
 * path (symlinks resolved) must stay inside the folder.
 */
export async function reportFile(
  dir: string,
  relative: string,
): Promise<{ bytes: Buffer; type: string } | null> {
  const segments = relative.split("/");
  if (segments.some((s) => s === "" || s === "." || s === ".." || s.startsWith(".") || s.includes("\\"))) {
    return null;
  }
  if (relative.includes("\0")) return null;
  const type = TYPES[path.extname(relative).toLowerCase()];
  if (!type) return null;
  try {
    const root = await realpath(dir);
    const file = await realpath(path.join(root, ...segments));
    if (!file.startsWith(root + path.sep)) return null;
    return { bytes: await readFile(file), type };
  } catch {
    return null;
  }
}
