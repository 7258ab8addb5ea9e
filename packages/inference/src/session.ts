import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { ProviderUnavailableError } from "./errors.js";

export type Provider = "cpu" | "cuda";

export interface SessionOptions {
  /** Intra-op threads; about cores / worker processes on a host (defaults oversubscribe). */
  threads?: number;
  provider?: Provider;
  /** CUDA device index. */
  deviceId?: number;
}

/** The CUDA provider ships separately from onnxruntime-node's npm package, so look for it before asking. */
export function cudaAvailable(): boolean {
  try {
    const req = createRequire(import.meta.url);
    const pkgDir = path.dirname(req.resolve("onnxruntime-node/package.json"));
    const dir = path.join(pkgDir, "bin", "napi-v6", process.platform, process.arch);
    return existsSync(path.join(dir, "libonnxruntime_providers_cuda.so"));
  } catch {
    return false;
  }
}

export async function createSession(model: string | Uint8Array, opts: SessionOptions = {}) {
  const provider = opts.provider ?? "cpu";
  if (provider === "cuda" && !cudaAvailable()) {
    throw new ProviderUnavailableError(
      "execution provider 'cuda' is not available: onnxruntime-node was installed without its CUDA libraries " +
        "(this repo's .npmrc skips them). On a CUDA 12 + cuDNN 9 machine run " +
        "`ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install` (the Dockerfile's gpu " +
        "target does), or use provider 'cpu'.",
    );
  }
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: provider === "cuda" ? [{ name: "cuda", deviceId: opts.deviceId ?? 0 }] : ["cpu"],
    graphOptimizationLevel: "all",
    executionMode: "sequential",
    interOpNumThreads: 1,
    ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
  };
  try {
    return typeof model === "string"
      ? await ort.InferenceSession.create(model, options)
      : await ort.InferenceSession.create(model, options);
  } catch (err) {
    const msg = (err as Error).message;
    if (provider === "cuda")
      throw new ProviderUnavailableError(`cannot start the CUDA execution provider: ${msg}`);
    throw new Error(`cannot load ONNX model ${typeof model === "string" ? model : "(buffer)"}: ${msg}`);
  }
}

export type Session = Awaited<ReturnType<typeof createSession>>;

/** Runs a [n, 3, h, w] float32 batch through the session and returns the named output, flat. */
export async function runBatch(
  session: Session,
  batch: Float32Array,
  dims: readonly [number, number, number, number],
  input = "input",
  output?: string,
): Promise<{ data: Float32Array; width: number }> {
  const outName = output ?? session.outputNames[0];
  if (!outName) throw new Error("model has no outputs");
  const [out] = await runOutputs(session, batch, dims, input, [outName]);
  return out as { data: Float32Array; width: number };
}

/** Like runBatch, for several outputs of one run (logits and the embedding the review reads). */
export async function runOutputs(
  session: Session,
  batch: Float32Array,
  dims: readonly [number, number, number, number],
  input: string,
  outputs: readonly string[],
): Promise<{ data: Float32Array; width: number }[]> {
  const tensor = new ort.Tensor("float32", batch, dims as unknown as number[]);
  try {
    const res = await session.run({ [input]: tensor }, [...outputs]);
    return outputs.map((name) => {
      const out = res[name];
      if (!out) throw new Error(`model did not produce output ${name}`);
      const data = out.data as Float32Array;
      return { data, width: data.length / dims[0] };
    });
  } finally {
    tensor.dispose?.();
  }
}
