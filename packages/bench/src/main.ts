/**
 * npm run bench -- [suite ...] [--model fp32|int8|<path>[,...]] [--json] [--seconds N] [--threads N]
 *                  [--pipeline-images N] [sweep options]
 *
 * Every suite in one process, one after the other, so ratios between them (and between models) hold on a
 * noisy machine. The table goes to stdout (stderr with --json, which prints one JSON object on stdout).
 */
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { MODEL_FILES, manifestPathFor, resolveModel } from "@garbage/inference";
import { classifySuite } from "./classify.js";
import { cliSuite } from "./cli.js";
import { Generated, MODELS_DIR, REPO_ROOT } from "./images.js";
import { inferenceSuite } from "./inference.js";
import { intList, positive, type Sweep, UsageError } from "./options.js";
import { pipelineSuite } from "./pipeline.js";
import { preprocessSuite } from "./preprocess.js";
import {
  header,
  type Measurement,
  type ModelChoice,
  machine,
  SUITES,
  type SuiteContext,
  type SuiteName,
  table,
} from "./report.js";
import { Services } from "./services.js";

const USAGE = `usage: npm run bench -- [suite ...] [options]

suites (default: all, always run in this order): ${SUITES.join(", ")}

  --model fp32|int8|<path>  model(s) to measure; a comma list (fp32,int8) runs each suite for each model and
                            prints ratios to the first (default: int8 when models/ has it, else fp32)
  --seconds N               measuring time per case (default 10)
  --threads N               onnxruntime threads (default: all ${os.availableParallelism()} cores; the pipeline's
                            2-worker case gives each worker half)
  --pipeline-images N       upload only the first N images in the pipeline suite (default: all)
  --json                    one JSON object on stdout, the table on stderr

sweeps (comma lists; every combination is measured in this one run, so their ratios hold):
  --classify-batch 1,2,4,8  classify: the API's CLASSIFY_MAX_BATCH (default: the API's default)
  --classify-wait 0,2,5     classify: the API's CLASSIFY_MAX_WAIT_MS (default: the API's default)
  --classify-threads 1,2    classify: the API's CLASSIFY_THREADS (default: --threads)
  --worker-batch 8,16,32    pipeline: the workers' BATCH_SIZE, images per session.run (default: the worker's, 8)
  --chunk-size 8,16         pipeline: the API's CHUNK_SIZE, images per queue job (default: the API's default)
  --pipeline-workers 1,2    pipeline: worker processes, --threads split between them (default 1,2)`;

const SUITE_RUNNERS: Record<SuiteName, (ctx: SuiteContext) => Promise<Measurement[]>> = {
  inference: inferenceSuite,
  preprocess: preprocessSuite,
  cli: cliSuite,
  pipeline: pipelineSuite,
  classify: classifySuite,
};

/** fp32/int8 name the shipped files; anything else is a path from where npm was run. */
function resolveModels(list: string | undefined): ModelChoice[] {
  const base = process.env.INIT_CWD ?? process.cwd();
  const choices = list === undefined ? [undefined] : list.split(",").map((s) => s.trim());
  const models = choices.map((choice): ModelChoice => {
    const file = resolveModel(choice || undefined, MODELS_DIR, "cpu", base);
    const named = Object.entries(MODEL_FILES).find(([, f]) => path.join(MODELS_DIR, f) === file)?.[0];
    const relative = path.relative(REPO_ROOT, file);
    const shown = relative.startsWith("..") ? file : relative;
    if (!existsSync(file)) {
      if (named === "int8")
        throw new UsageError(
          `--model int8: ${shown} does not exist yet; make it with 'npm run quantize' or measure --model fp32`,
        );
      throw new UsageError(`--model ${choice ?? ""}: no model at ${shown}`);
    }
    if (!existsSync(manifestPathFor(file)))
      throw new UsageError(
        `--model ${choice ?? ""}: no manifest ${path.relative(REPO_ROOT, manifestPathFor(file))}`,
      );
    return { label: named ?? path.basename(file, ".onnx"), path: file };
  });
  if (new Set(models.map((m) => m.label)).size !== models.length)
    throw new UsageError(`--model names the same model twice: ${list}`);
  return models;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      model: { type: "string" },
      seconds: { type: "string" },
      threads: { type: "string" },
      "pipeline-images": { type: "string" },
      "classify-batch": { type: "string" },
      "classify-wait": { type: "string" },
      "classify-threads": { type: "string" },
      "worker-batch": { type: "string" },
      "chunk-size": { type: "string" },
      "pipeline-workers": { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const unknown = positionals.filter((s) => !(SUITES as readonly string[]).includes(s));
  if (unknown.length > 0) throw new UsageError(`unknown suite ${unknown.join(", ")}`);
  const suites = SUITES.filter((s) => positionals.length === 0 || positionals.includes(s));
  const models = resolveModels(values.model);
  const threads = Math.round(positive(values.threads, "threads") ?? os.availableParallelism());
  const budgetMs = (positive(values.seconds, "seconds") ?? 10) * 1000;
  const pipelineImages = positive(values["pipeline-images"], "pipeline-images");
  const sweep: Sweep = {
    classifyBatch: intList(values["classify-batch"], "classify-batch", 1),
    classifyWait: intList(values["classify-wait"], "classify-wait", 0),
    classifyThreads: intList(values["classify-threads"], "classify-threads", 1),
    workerBatch: intList(values["worker-batch"], "worker-batch", 1),
    chunkSize: intList(values["chunk-size"], "chunk-size", 1),
    pipelineWorkers: intList(values["pipeline-workers"], "pipeline-workers", 1),
  };

  const date = new Date();
  const host = machine();
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const loadStart = os.loadavg();
  const head = header(host, date, models, threads, loadStart);
  log(head);
  const generated = await Generated.create();
  let services: Promise<Services> | undefined;
  const results: Measurement[] = [];
  const failures: { suite: SuiteName; model: string; error: string }[] = [];
  const cleanup = async () => {
    await Promise.allSettled([generated.dispose(), services?.then((s) => s.close())]);
  };
  process.once("SIGINT", () => void cleanup().then(() => process.exit(130)));
  try {
    for (const suite of suites) {
      // preprocess does not touch the model's weights, only its input size: once per run.
      for (const model of suite === "preprocess" ? models.slice(0, 1) : models) {
        log(`${suite} (${suite === "preprocess" ? "any model" : model.label})`);
        const ctx: SuiteContext = {
          model,
          threads,
          budgetMs,
          generated,
          results,
          pipelineImages: pipelineImages === undefined ? undefined : Math.round(pipelineImages),
          sweep,
          services: () => {
            services ??= Services.open();
            return services;
          },
          log,
        };
        try {
          results.push(...(await SUITE_RUNNERS[suite](ctx)));
        } catch (err) {
          const error = err instanceof Error ? err.message : String(err);
          failures.push({ suite, model: model.label, error });
          log(`  ${suite} (${model.label}) failed: ${error}`);
        }
      }
    }
  } finally {
    await cleanup();
  }

  // Other processes' load changes the numbers; the run's own load (2 cores busy) is part of what it reads.
  const loadEnd = os.loadavg();
  const load = `load average at the end: ${loadEnd.map((l) => l.toFixed(2)).join(" ")}`;
  const text = `${head}\n${load}\n\n${table(results, models)}${failures.length ? `\n\n${failures.length} failed: ${failures.map((f) => `${f.suite} (${f.model})`).join(", ")}` : ""}`;
  if (values.json) {
    log(`\n${text}`);
    const options = { suites, models, threads, seconds: budgetMs / 1000, pipelineImages, sweep };
    const loadAverage = { start: loadStart, end: loadEnd };
    console.log(
      JSON.stringify(
        { date: date.toISOString(), machine: host, loadAverage, options, results, failures },
        null,
        2,
      ),
    );
  } else {
    console.log(`\n${text}`);
  }
  return failures.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof UsageError) {
      console.error(`${err.message}\n\n${USAGE}`);
      process.exit(2);
    }
    console.error(err);
    process.exit(1);
  },
);
