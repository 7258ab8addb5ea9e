import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { type AppendHeadOptions, appendLinearHead } from "@garbage/convert";
import { computeMetrics, createSession, type LabelledImage } from "@garbage/inference";
import type { Backbone } from "./backbone.js";
import { extractFeatures } from "./features.js";
import {
  argmaxRows,
  beats,
  fitStandardiser,
  foldStandardiser,
  nll,
  selectHead,
  standardise,
  type Trial,
} from "./head-selection.js";
import { fitMlpHead, residualLogits } from "./mlp-head.js";
import type { View } from "./views.js";

export interface Phase1Options {
  backbone: Backbone & { output: string };
  classes: readonly string[];
  train: LabelledImage[];
  val: LabelledImage[];
  views: View[];
  lambdas: number[];
  balanced: boolean;
  seed: number;
  threads: number;
  cacheDir: string;
  out: string;
  /** Train the residual ReLU branch (needs python3-torch) and keep it if it beats the linear head on val. */
  mlp: boolean;
  mlpArgs?: string[];
  log: (s: string) => void;
}

export interface MlpTrial {
  kept: boolean;
  valAccuracy: number;
  valMacroF1: number;
  valNll: number;
  minutes: number;
  settings: Record<string, unknown>;
}

export interface Phase1Result {
  file: string;
  lambda: number;
  trials: Trial[];
  extractMinutes: number;
  fitMinutes: number;
  mlp: MlpTrial | null;
}

/** Frozen backbone features (train in every view, val as served) and an L2 softmax head chosen on val. */
export async function runPhase1(o: Phase1Options): Promise<Phase1Result> {
  const t0 = performance.now();
  const session = await createSession(o.backbone.file, { threads: o.threads });
  const extract = async (files: string[], view: View) => {
    const started = performance.now();
    let last = 0;
    return extractFeatures(files, view, {
      session,
      modelId: o.backbone.sha256,
      spec: o.backbone.input,
      seed: o.seed,
      cacheDir: o.cacheDir,
      onProgress: (done, total) => {
        if (performance.now() - last > 15_000 || done === total) {
          last = performance.now();
          o.log(
            `  features ${view}: ${done}/${total} (${(done / ((performance.now() - started) / 1000)).toFixed(1)} img/s)`,
          );
        }
      },
    });
  };
  const trainFiles = o.train.map((i) => i.file);
  const parts: Float32Array[] = [];
  let d = 0;
  for (const view of o.views) {
    const f = await extract(trainFiles, view);
    parts.push(f.x);
    d = f.d;
  }
  const valFeat = await extract(
    o.val.map((i) => i.file),
    "orig",
  );
  await session.release();
  const t1 = performance.now();

  const n = trainFiles.length * o.views.length;
  const x = new Float32Array(n * d);
  parts.forEach((p, i) => {
    x.set(p, i * trainFiles.length * d);
  });
  const k = o.classes.length;
  const y = Int32Array.from({ length: n }, (_, i) => (o.train[i % o.train.length] as LabelledImage).label);
  // Class weights n / (k * n_c) make each class count equally in the loss (sklearn's "balanced").
  const counts = o.classes.map((_, c) => y.filter((v) => v === c).length);
  const w = o.balanced ? Float32Array.from(y, (v) => n / (k * (counts[v] as number))) : undefined;
  const st = fitStandardiser(x, n, d);
  const yVal = Int32Array.from(o.val, (i) => i.label);
  const train = { x: standardise(x, st), y, n, d, k, w };
  const val = { x: standardise(valFeat.x, st), y: yVal, n: o.val.length, d, k };
  const best = selectHead(train, val, o.classes, o.lambdas, o.log);
  const head = foldStandardiser(best.head, st);

  let mlp: MlpTrial | null = null;
  let branch: AppendHeadOptions["mlp"];
  if (o.mlp) {
    const fit = await fitMlpHead(train, val, {
      dir: path.dirname(o.out),
      seed: o.seed,
      threads: o.threads,
      args: o.mlpArgs,
    });
    const logits = residualLogits(best.head, fit, val.x, val.n, d);
    const m = computeMetrics(o.classes, Array.from(yVal), argmaxRows(logits, k));
    const score = { valAccuracy: m.accuracy, valMacroF1: m.macroF1 };
    const kept = beats(score, best.trial);
    mlp = {
      kept,
      valAccuracy: m.accuracy,
      valMacroF1: m.macroF1,
      valNll: nll(logits, yVal, k),
      minutes: fit.report.minutes,
      settings: fit.report.settings,
    };
    o.log(
      `linear + mlp branch: val acc ${(100 * m.accuracy).toFixed(2)}% macro-F1 ${m.macroF1.toFixed(4)} nll ${mlp.valNll.toFixed(4)} (${fit.report.minutes.toFixed(1)} min): ${kept ? "kept" : "not kept, linear head only"}`,
    );
    if (kept) branch = [foldStandardiser(fit.first, st), fit.second];
  }
  await mkdir(path.dirname(o.out), { recursive: true });
  const bytes = await appendLinearHead(o.backbone.file, head.weight, head.bias, {
    outName: "logits",
    featuresName: o.backbone.output,
    mlp: branch,
  });
  await writeFile(`${o.out}.tmp`, bytes);
  await rename(`${o.out}.tmp`, o.out);
  return {
    file: o.out,
    lambda: best.trial.lambda,
    trials: best.trials,
    extractMinutes: (t1 - t0) / 60000,
    fitMinutes: (performance.now() - t1) / 60000,
    mlp,
  };
}
