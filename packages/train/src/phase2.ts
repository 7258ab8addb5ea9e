import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";

export const PYTHON = process.env.GARBAGE_PYTHON ?? "/usr/bin/python3";
const SCRIPT = path.resolve(import.meta.dirname, "../python/finetune.py");

export interface Phase2Report {
  bestEpoch: number;
  valAccuracy: number;
  valMacroF1: number;
  history: { epoch: number; valAccuracy: number; valMacroF1: number; trainLoss: number | null }[];
  minutes: number;
  device: string;
  settings: Record<string, unknown>;
  files: string[];
  probabilities: number[][];
}

export async function torchAvailable(): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn(PYTHON, ["-c", "import torch, torchvision, onnx"], { stdio: "ignore" });
    p.on("error", () => resolve(false));
    p.on("exit", (code) => resolve(code === 0));
  });
}

/** Runs a training script with /usr/bin/python3 (GARBAGE_PYTHON), its output going to ours. */
export function runPython(args: string[]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const p = spawn(PYTHON, args, { stdio: ["ignore", "inherit", "inherit"] });
    p.on("error", reject);
    p.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`${path.basename(args[0] ?? PYTHON)} exited with ${code}`)),
    );
  });
}

/** Runs finetune.py (PyTorch; CUDA when present) and returns its report. */
export async function runPhase2(o: {
  model: string;
  out: string;
  train: string;
  valTensors: string;
  valList: string;
  args: string[];
}): Promise<Phase2Report> {
  const args = [
    SCRIPT,
    "--model",
    o.model,
    "--out",
    o.out,
    "--train",
    o.train,
    "--val-tensors",
    o.valTensors,
    "--val-list",
    o.valList,
    ...o.args,
  ];
  await runPython(args);
  return JSON.parse(await readFile(`${o.out}.torch-val.json`, "utf8")) as Phase2Report;
}
