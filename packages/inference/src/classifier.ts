import { type DecodeLimits, decodeImage, type ImageInput, type Pixels } from "./decode.js";
import { ImageError, type ImageErrorCode } from "./errors.js";
import { type ModelManifest, manifestPathFor, readManifest, sha256File } from "./manifest.js";
import { type Scored, softmax, topK } from "./math.js";
import { createSession, runBatch, type Session, type SessionOptions } from "./session.js";
import { flipPixels, tensorSize, writeTensor } from "./tensor.js";

export interface ClassifierOptions extends SessionOptions {
  /** Path to the .onnx file; its manifest is the .json beside it unless `manifest` says otherwise. */
  model: string;
  manifest?: string;
  limits?: DecodeLimits;
  /** Images per session.run; bounds memory (a 224x224 image is 0.6 MB of float32). */
  maxBatch?: number;
  /** Test-time augmentation: also run the mirrored image and average the probabilities. */
  tta?: boolean;
  /** Refuse a model whose sha256 differs from its manifest (costs one read of the file at start). */
  verifyChecksum?: boolean;
}

export interface Prediction {
  ok: true;
  label: string;
  confidence: number;
  top: Scored[];
  probabilities: number[];
}

export interface Failure {
  ok: false;
  error: { code: ImageErrorCode; message: string };
}

export type Outcome = Prediction | Failure;

export interface Classifier {
  readonly manifest: ModelManifest;
  readonly classes: readonly string[];
  /** Classifies many images with as few session.run calls as maxBatch allows; never throws for bad images. */
  classify(inputs: readonly ImageInput[], opts?: { topK?: number }): Promise<Outcome[]>;
  /** Runs already-decoded pixels (the worker decodes while the previous batch runs). */
  classifyPixels(pixels: readonly Pixels[], opts?: { topK?: number }): Promise<Prediction[]>;
  decode(input: ImageInput): Promise<Pixels>;
  close(): Promise<void>;
}

export async function loadClassifier(opts: ClassifierOptions): Promise<Classifier> {
  const manifestPath = opts.manifest ?? manifestPathFor(opts.model);
  const manifest = await readManifest(manifestPath);
  if (opts.verifyChecksum) {
    const actual = await sha256File(opts.model);
    if (actual !== manifest.sha256) {
      throw new Error(`model ${opts.model} has sha256 ${actual}, its manifest says ${manifest.sha256}`);
    }
  }
  const session = await createSession(opts.model, opts);
  return new OnnxClassifier(session, manifest, opts);
}

class OnnxClassifier implements Classifier {
  readonly classes: readonly string[];
  private readonly maxBatch: number;

  constructor(
    private readonly session: Session,
    readonly manifest: ModelManifest,
    private readonly opts: ClassifierOptions,
  ) {
    this.classes = manifest.classes;
    this.maxBatch = Math.max(1, opts.maxBatch ?? 32);
  }

  decode(input: ImageInput): Promise<Pixels> {
    return decodeImage(input, this.manifest.input, this.opts.limits);
  }

  async classify(inputs: readonly ImageInput[], opts: { topK?: number } = {}): Promise<Outcome[]> {
    const outcomes: Outcome[] = new Array(inputs.length);
    for (let start = 0; start < inputs.length; start += this.maxBatch) {
      const chunk = inputs.slice(start, start + this.maxBatch);
      const decoded = await Promise.all(
        chunk.map((input) => this.decode(input).catch((err: unknown) => err)),
      );
      const good: Pixels[] = [];
      const where: number[] = [];
      decoded.forEach((d, i) => {
        if (d instanceof Error) {
          const e = d instanceof ImageError ? d : new ImageError("corrupt", d.message);
          outcomes[start + i] = { ok: false, error: { code: e.code, message: e.message } };
        } else {
          good.push(d as Pixels);
          where.push(start + i);
        }
      });
      if (good.length === 0) continue;
      const preds = await this.classifyPixels(good, opts);
      preds.forEach((p, j) => {
        outcomes[where[j] as number] = p;
      });
    }
    return outcomes;
  }

  async classifyPixels(pixels: readonly Pixels[], opts: { topK?: number } = {}): Promise<Prediction[]> {
    const spec = this.manifest.input;
    const views = this.opts.tta ? pixels.flatMap((p) => [p, flipPixels(p)]) : [...pixels];
    const size = tensorSize(spec);
    const probs: number[][] = [];
    for (let start = 0; start < views.length; start += this.maxBatch) {
      const chunk = views.slice(start, start + this.maxBatch);
      const batch = new Float32Array(chunk.length * size);
      chunk.forEach((p, i) => {
        writeTensor(p, spec, batch, i * size);
      });
      const { data, width } = await runBatch(
        this.session,
        batch,
        [chunk.length, 3, spec.height, spec.width],
        spec.name,
        this.manifest.output.name,
      );
      for (let i = 0; i < chunk.length; i++) {
        const row = data.subarray(i * width, (i + 1) * width);
        probs.push(
          this.manifest.output.kind === "logits" ? softmax(row, this.manifest.temperature) : Array.from(row),
        );
      }
    }
    const k = opts.topK ?? 3;
    return pixels.map((_, i) => {
      const p = this.opts.tta
        ? average(probs[2 * i] as number[], probs[2 * i + 1] as number[])
        : (probs[i] as number[]);
      const top = topK(p, this.classes, k);
      const best = top[0] as Scored;
      return { ok: true, label: best.label, confidence: best.confidence, top, probabilities: p };
    });
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

function average(a: number[], b: number[]): number[] {
  return a.map((x, i) => (x + (b[i] as number)) / 2);
}
