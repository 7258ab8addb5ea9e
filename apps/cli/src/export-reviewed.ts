import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { createDb, type DbOrTx, migrate } from "@garbage/db";
import { createStore, type ImageStore, reviewedEntries } from "@garbage/storage";
import { UsageError, userPath } from "./options.js";

export const exportReviewedHelp = `usage: garbage export-reviewed --out <dir> [--site S]

Writes every reviewed image (confirmed or corrected in the web UI) as <dir>/<class>/<imageId>.<ext> under its
reviewed label, ready for \`npm run train\`. Reads DATABASE_URL and STORAGE_URL (as the API does; default
file://<cwd>/data/images). Running it again into the same folder brings it up to date: an image whose label
was changed since moves to its new class folder.`;

// Only files this command writes are ever removed from <dir>: <class>/<uuid>.<ext>.
const EXPORTED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[a-z0-9]{1,5}$/;

export interface ExportSummary {
  written: number;
  removed: number;
  missing: number;
  classes: Record<string, number>;
}

/** The export itself, on handles the caller owns (tests call it directly). */
export async function exportReviewed(
  db: DbOrTx,
  store: Pick<ImageStore, "get">,
  options: { out: string; site?: string | null },
): Promise<ExportSummary> {
  const summary: ExportSummary = { written: 0, removed: 0, missing: 0, classes: {} };
  const kept = new Set<string>();
  for await (const entry of reviewedEntries(db, store, {
    sites: null,
    site: options.site ?? null,
    onMissing: () => summary.missing++,
  })) {
    const file = path.join(options.out, ...entry.path.split("/"));
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, entry.bytes);
    kept.add(entry.path);
    summary.written++;
    const folder = entry.path.split("/")[0] as string;
    summary.classes[folder] = (summary.classes[folder] ?? 0) + 1;
  }
  // A previous export's copy of an image that has since been relabelled (or un-exported) is training data
  // under the wrong class: remove it.
  for (const dir of await readdir(options.out, { withFileTypes: true }).catch(() => [])) {
    if (!dir.isDirectory()) continue;
    for (const name of await readdir(path.join(options.out, dir.name))) {
      if (EXPORTED.test(name) && !kept.has(`${dir.name}/${name}`)) {
        await rm(path.join(options.out, dir.name, name));
        summary.removed++;
      }
    }
  }
  return summary;
}

export async function exportReviewedCommand(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { out: { type: "string" }, site: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(exportReviewedHelp);
    return 0;
  }
  if (positionals.length > 0)
    throw new UsageError(`unexpected argument ${positionals[0]}\n\n${exportReviewedHelp}`);
  if (!values.out) throw new UsageError(`--out is required\n\n${exportReviewedHelp}`);
  if (!env.DATABASE_URL) throw new UsageError("DATABASE_URL is not set");
  const out = userPath(values.out);
  const handle = createDb(env.DATABASE_URL, { max: 2 });
  try {
    await migrate(handle.db);
    const storageUrl = env.STORAGE_URL ?? pathToFileURL(path.resolve(process.cwd(), "data/images")).href;
    const store = createStore(storageUrl, { db: handle.db });
    const s = await exportReviewed(handle.db, store, { out, site: values.site ?? null });
    const classes = Object.entries(s.classes)
      .map(([name, n]) => `${name} ${n}`)
      .join(", ");
    console.error(
      `exported ${s.written} reviewed images to ${out}${classes ? ` (${classes})` : ""}` +
        (s.removed ? `; removed ${s.removed} stale copies` : "") +
        (s.missing ? `; ${s.missing} no longer in storage` : ""),
    );
    return 0;
  } finally {
    await handle.close();
  }
}
