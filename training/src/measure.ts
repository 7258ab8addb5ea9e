import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { REPO_ROOT } from "./fetch-resnet.js";

const exec = promisify(execFile);

export interface EvalMetrics {
  n: number;
  accuracy: number;
  macroF1: number;
  review: { flaggedRate: number; confidentAccuracy?: number | null };
  [key: string]: unknown;
}

/** `garbage eval` of a model on an ImageFolder: the served path, as a user measures it. */
export async function evalModel(model: string, data: string, threads: number): Promise<EvalMetrics> {
  const { stdout } = await exec(
    "npx",
    [
      "tsx",
      "apps/cli/src/main.ts",
      "eval",
      "--data",
      data,
      "--json",
      "--quiet",
      "--model",
      model,
      "--threads",
      String(threads),
    ],
    { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 },
  );
  return JSON.parse(stdout) as EvalMetrics;
}
