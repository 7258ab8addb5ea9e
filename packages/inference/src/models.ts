import { existsSync } from "node:fs";
import path from "node:path";
import type { Provider } from "./session.js";

/** The shipped models in models/: the float model and its int8 quantization (npm run quantize). */
export const MODEL_FILES = { fp32: "garbage-resnet50.onnx", int8: "garbage-resnet50-int8.onnx" } as const;

/**
 * Which model file to load: "fp32" and "int8" name the shipped ones, anything else is a path (relative to
 * `base`). Without a choice, a CPU gets int8 when it is there (about twice the images per second at the
 * same accuracy, docs/model.md) and a GPU the float model, which is what its kernels are fast at.
 */
export function resolveModel(
  choice: string | undefined,
  modelsDir: string,
  provider: Provider = "cpu",
  base = process.cwd(),
): string {
  if (choice === "fp32" || choice === "int8") return path.join(modelsDir, MODEL_FILES[choice]);
  if (choice) return path.resolve(base, choice);
  const int8 = path.join(modelsDir, MODEL_FILES.int8);
  return provider === "cpu" && existsSync(int8) ? int8 : path.join(modelsDir, MODEL_FILES.fp32);
}
