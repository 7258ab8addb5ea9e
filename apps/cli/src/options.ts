import path from "node:path";
import { loadClassifier, resolveModel } from "@garbage/inference";

export const MODELS_DIR = path.resolve(import.meta.dirname, "../../../models");
/** The model a CPU run loads without --model: int8 when it has been made, else the float model. */
export const DEFAULT_MODEL = resolveModel(undefined, MODELS_DIR);

export class UsageError extends Error {}

/** npm runs scripts from the repo root; INIT_CWD is where the user typed the command. */
export function userPath(p: string): string {
  return path.resolve(process.env.INIT_CWD ?? process.cwd(), p);
}

export function intOption(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--${name} must be a positive integer, got ${value}`);
  return n;
}

export interface CommonOptions {
  model?: string;
  threads?: string;
  batch?: string;
  provider?: string;
  tta?: boolean;
}

export async function openClassifier(o: CommonOptions) {
  const provider = o.provider ?? "cpu";
  if (provider !== "cpu" && provider !== "cuda")
    throw new UsageError(`--provider must be cpu or cuda, got ${provider}`);
  return loadClassifier({
    model: resolveModel(o.model, MODELS_DIR, provider, process.env.INIT_CWD ?? process.cwd()),
    threads: o.threads ? intOption(o.threads, "threads", 1) : undefined,
    provider,
    tta: o.tta ?? false,
    maxBatch: intOption(o.batch, "batch", 16),
  });
}

export const commonArgs = {
  model: { type: "string" },
  threads: { type: "string" },
  batch: { type: "string" },
  provider: { type: "string" },
  tta: { type: "boolean" },
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
} as const;
