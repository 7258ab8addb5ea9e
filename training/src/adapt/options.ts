import { existsSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { MODEL_FILES, type ModelManifest, manifestPathFor, readManifest } from "@garbage/inference";
import { REPO_ROOT } from "../fetch-resnet.js";

export const adaptHelp = `usage: npm run adapt -- (--data <root> | --site S) --out <file>.onnx [options]

Fine-tunes a served model on a site's photos and writes a complete served model: <file>.onnx, its manifest
<file>.json, reference embeddings <file>.ref.bin and the int8 twin <file>-int8.onnx with its manifest.
\`garbage classify --model <file>.onnx\` and \`eval\` use it as it is; \`garbage models add\` registers it.

  --data <root>      the site's photos as <root>/<class>/<image> (what export-reviewed writes; links are
                     followed; a site may have photos of only some classes, the model keeps all of them)
  --site S           read site S's reviewed photos from Postgres and storage (DATABASE_URL, STORAGE_URL)
  --out <file>.onnx  where to write the model
  --base B           int8 | fp32 | <path>: the served model to start from (default: the shipped one;
                     an int8 model starts from the float model it was quantized from)
  --sites a,b        with --data: the sites the model is for (recorded in the manifest; registry scope)
  --epochs N         passes over the site's augmented views (default 4; at least 150, at most 600 steps)
  --views N          views per photo, the first one as served (default 12)
  --cv-folds K       cross-validation folds for the temperature, thresholds and metrics (default 3; 0: none)
  --target A         accuracy the unflagged part must reach, for the review threshold (default
                     REVIEW_TARGET_ACCURACY or 0.9)
  --replay <root>    base training photos replayed in every batch (default ../shared/datasets/trashnet/train)
  --replay-images N  how many of them (default 720, spread over the classes)
  --steps N          a fixed number of training steps instead of --epochs (quick trials, tests)
  --eval <root>      also measure the written model on this folder with garbage eval (repeatable)
  --seed N           (default 0)   --threads N (default 2)   --no-int8   --keep-work`;

export interface AdaptOptions {
  data?: string;
  site?: string;
  out: string;
  base?: string;
  sites: string[] | null;
  epochs: number;
  views: number;
  cvFolds: number;
  target: number;
  replay: string;
  replayImages: number;
  steps: number;
  evals: string[];
  seed: number;
  threads: number;
  int8: boolean;
  keepWork: boolean;
}

class UsageError extends Error {
  readonly code = "usage";
}

const cwd = () => process.env.INIT_CWD ?? process.cwd();

function num(value: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max)
    throw new UsageError(`--${name} must be a number in [${min}, ${max}]`);
  return n;
}

export function parseAdaptArgs(argv: string[]): AdaptOptions {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      data: { type: "string" },
      site: { type: "string" },
      out: { type: "string" },
      base: { type: "string" },
      sites: { type: "string" },
      epochs: { type: "string" },
      views: { type: "string" },
      "cv-folds": { type: "string" },
      target: { type: "string" },
      replay: { type: "string" },
      "replay-images": { type: "string" },
      steps: { type: "string" },
      eval: { type: "string", multiple: true },
      seed: { type: "string" },
      threads: { type: "string" },
      "no-int8": { type: "boolean" },
      "keep-work": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (v.help) {
    console.log(adaptHelp);
    process.exit(0);
  }
  if (!v.data === !v.site) throw new UsageError(`give exactly one of --data and --site\n\n${adaptHelp}`);
  if (!v.out?.toLowerCase().endsWith(".onnx"))
    throw new UsageError(`--out <file>.onnx is required\n\n${adaptHelp}`);
  const target = v.target ?? process.env.REVIEW_TARGET_ACCURACY;
  return {
    data: v.data ? path.resolve(cwd(), v.data) : undefined,
    site: v.site,
    out: path.resolve(cwd(), v.out),
    base: v.base,
    sites: v.sites
      ? v.sites
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean)
      : null,
    epochs: num(v.epochs, "epochs", 4, 0.1, 100),
    views: num(v.views, "views", 12, 1, 64),
    cvFolds: num(v["cv-folds"], "cv-folds", 3, 0, 10),
    target: num(target, "target", 0.9, 0.5, 1),
    replay: path.resolve(cwd(), v.replay ?? path.join(REPO_ROOT, "../shared/datasets/trashnet/train")),
    replayImages: num(v["replay-images"], "replay-images", 720, 6, 100_000),
    steps: num(v.steps, "steps", 0, 1, 100_000),
    evals: (v.eval ?? []).map((e) => path.resolve(cwd(), e)),
    seed: num(v.seed, "seed", 0, 0, 2 ** 31),
    threads: num(v.threads, "threads", 2, 1, 256),
    int8: !v["no-int8"],
    keepWork: Boolean(v["keep-work"]),
  };
}

/** The float model to fine-tune: an int8 model's manifest names the float model it was quantized from. */
export async function resolveBase(
  choice: string | undefined,
): Promise<{ float: string; manifest: ModelManifest; label: string }> {
  const models = path.join(REPO_ROOT, "models");
  let file =
    choice === "int8" || choice === "fp32" || !choice
      ? path.join(models, MODEL_FILES[choice === "int8" ? "int8" : "fp32"])
      : path.resolve(cwd(), choice);
  let manifest = await readManifest(manifestPathFor(file));
  const from = (manifest as { quantization?: { from?: { file?: string } } }).quantization?.from?.file;
  if (from) {
    file = path.resolve(path.dirname(file), from);
    manifest = await readManifest(manifestPathFor(file));
  }
  if (!existsSync(file)) throw new UsageError(`base model ${file} does not exist`);
  return { float: file, manifest, label: `${manifest.name}@${manifest.version}` };
}
