import path from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import {
  ALL_SITES,
  compareVersions,
  createDb,
  type DbOrTx,
  getModelVersion,
  listAssignments,
  listModelVersions,
  type ModelVersionRow,
  migrate,
  promoteModelVersion,
  rollbackSites,
  setShadow,
} from "@garbage/db";
import { manifestPathFor, readManifest } from "@garbage/inference";
import { checkPromotion, publishModel } from "@garbage/models";
import { createStore, type ImageStore } from "@garbage/storage";
import { printComparison } from "./comparison.js";
import { DEFAULT_MODEL, UsageError, userPath } from "./options.js";

export const modelsHelp = `usage: garbage models add <file.onnx> [--sites a,b]
       garbage models list [--json]
       garbage models shadow <id|name@version> [--off]
       garbage models promote <id|name@version> [--sites a,b] [--force]
       garbage models rollback --site S [--site T ...] | --all
       garbage models compare <id|name@version> [--site S] [--json]

Site model versions in Postgres (DATABASE_URL), their files in STORAGE_URL (as the API; default
file://<cwd>/data/images). add registers <file>.onnx with <file>.json, its <file>-int8 twin and reference
embeddings when present (scope: --sites, '*' = every site; default the manifest's site.sites, else every
site). shadow runs a candidate beside the active version on its sites' live images; compare shows the two
side by side; promote serves it (refused when it is worse than the active version on reviewed images it never
trained on, or there are none yet, unless --force); rollback restores what served a site before (--all: the
every-site assignment '*'). Without an assignment a site gets the shipped model.`;

type Print = (line: string) => void;
interface Ctx {
  db: DbOrTx;
  store: ImageStore;
  print: Print;
  by: string;
}

const siteList = (value: string | undefined) =>
  value === undefined
    ? undefined
    : value
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);

function one(positionals: string[], what: string): string {
  if (positionals.length !== 1)
    throw new UsageError(`${what} takes one version (id or name@version)\n\n${modelsHelp}`);
  return positionals[0] as string;
}

async function find(db: DbOrTx, id: string): Promise<ModelVersionRow> {
  const v = await getModelVersion(db, id);
  if (!v) throw new Error(`no model version ${id}`);
  return v;
}

async function add(ctx: Ctx, args: string[]) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { sites: { type: "string" } },
  });
  const file = one(positionals, "add");
  if (!/\.onnx$/i.test(file)) throw new UsageError(`add takes the float model's .onnx file, got ${file}`);
  const sites = siteList(values.sites);
  if (sites?.length === 0) throw new UsageError("--sites names no site");
  const v = await publishModel({
    db: ctx.db,
    store: ctx.store,
    modelPath: userPath(file),
    sites,
    by: ctx.by,
  });
  ctx.print(`${v.id}\t${v.modelVersion}`);
  console.error(
    `registered ${v.modelVersion} (candidate) for ${v.sites ? `sites ${v.sites.join(", ")}` : "every site"}, ` +
      `${v.files.length} files${v.int8Manifest ? " with its int8 twin" : ""}`,
  );
  return 0;
}

async function list(ctx: Ctx, args: string[]) {
  const { values } = parseArgs({ args, options: { json: { type: "boolean" } } });
  const versions = await listModelVersions(ctx.db);
  const assignments = await listAssignments(ctx.db);
  const shipped = await readManifest(manifestPathFor(DEFAULT_MODEL)).catch(() => null);
  const fallback = shipped ? `${shipped.name}@${shipped.version}` : null;
  if (values.json) {
    ctx.print(JSON.stringify({ default: fallback, versions, assignments }));
    return 0;
  }
  for (const v of versions) {
    const serves = assignments.filter((a) => a.versionId === v.id).map((a) => a.site);
    ctx.print(
      [
        v.id,
        v.modelVersion,
        v.state,
        v.sites?.join("|") ?? ALL_SITES,
        serves.length ? `serves ${serves.join("|")}` : "-",
        v.dataUntil ? `data until ${v.dataUntil.toISOString()}` : "-",
        v.createdAt.toISOString(),
      ].join("\t"),
    );
  }
  console.error(
    `${versions.length} versions; a site with no assignment (nor '*') gets ${fallback ?? "the shipped model"}`,
  );
  return 0;
}

async function shadow(ctx: Ctx, args: string[]) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { off: { type: "boolean" } },
  });
  const v = await setShadow(ctx.db, (await find(ctx.db, one(positionals, "shadow"))).id, !values.off);
  ctx.print(`${v.modelVersion}\t${v.state}`);
  return 0;
}

async function promote(ctx: Ctx, args: string[]) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { sites: { type: "string" }, force: { type: "boolean" } },
  });
  const v = await find(ctx.db, one(positionals, "promote"));
  const sites = siteList(values.sites);
  if (sites?.length === 0) throw new UsageError("--sites names no site");
  const check = await checkPromotion(ctx.db, v, { sites });
  printComparison((line) => console.error(line), check.comparison);
  if (check.refusal && !values.force) {
    console.error(
      `garbage: not promoted (${check.refusal.code}): ${check.refusal.message}; --force promotes anyway`,
    );
    return 1;
  }
  const out = await promoteModelVersion(ctx.db, v.id, { sites, by: ctx.by });
  for (const c of out.changes) ctx.print(`${c.site}\t${c.from?.modelVersion ?? "-"} -> ${v.modelVersion}`);
  for (const r of out.retired) console.error(`retired ${r.modelVersion} (serves no site any more)`);
  return 0;
}

async function rollback(ctx: Ctx, args: string[]) {
  const { values } = parseArgs({
    args,
    options: { site: { type: "string", multiple: true }, all: { type: "boolean" } },
  });
  const sites = values.all ? [ALL_SITES] : (values.site ?? []);
  if (values.all && values.site) throw new UsageError("--all and --site exclude each other");
  if (sites.length === 0) throw new UsageError(`rollback needs --site S or --all\n\n${modelsHelp}`);
  const out = await rollbackSites(ctx.db, { sites, by: ctx.by });
  for (const c of out.changes) ctx.print(`${c.site}\t${c.from.modelVersion} -> ${c.to?.modelVersion ?? "-"}`);
  for (const r of out.retired) console.error(`retired ${r.modelVersion} (serves no site any more)`);
  return 0;
}

async function compare(ctx: Ctx, args: string[]) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { site: { type: "string" }, json: { type: "boolean" } },
  });
  const v = await find(ctx.db, one(positionals, "compare"));
  const c = await compareVersions(ctx.db, {
    candidateId: v.id,
    ...(values.site ? { site: values.site } : {}),
  });
  if (values.json) ctx.print(JSON.stringify({ candidate: v.modelVersion, site: values.site ?? null, ...c }));
  else {
    ctx.print(
      `${v.modelVersion} (${v.state}) against the active version, ${values.site ? `site ${values.site}` : "its scope"}`,
    );
    printComparison(ctx.print, c);
  }
  return 0;
}

const SUBCOMMANDS = { add, list, shadow, promote, rollback, compare };

export async function modelsCommand(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  print: Print = (line) => console.log(line),
): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "help" || sub === "--help" || sub === "-h" || rest.includes("--help")) {
    console.log(modelsHelp);
    return sub === undefined ? 2 : 0;
  }
  const command = SUBCOMMANDS[sub as keyof typeof SUBCOMMANDS];
  if (!command) throw new UsageError(`unknown models command '${sub}'\n\n${modelsHelp}`);
  if (!env.DATABASE_URL) throw new UsageError("DATABASE_URL is not set");
  const handle = createDb(env.DATABASE_URL, { max: 2 });
  try {
    await migrate(handle.db);
    const storageUrl = env.STORAGE_URL ?? pathToFileURL(path.resolve(process.cwd(), "data/images")).href;
    const store = createStore(storageUrl, { db: handle.db });
    return await command({ db: handle.db, store, print, by: env.USER ?? env.LOGNAME ?? "cli" }, rest);
  } finally {
    await handle.close();
  }
}
