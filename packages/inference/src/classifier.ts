import { type DecodeLimits, decodeImage, type ImageInput, type Pixels } from "./decode.js";
import { ImageError, type ImageErrorCode, toImageError } from "./errors.js";
import { type ModelManifest, manifestPathFor, readManifest, sha256File } from "./manifest.js";
import { type Scored, softmax, topK } from "./math.js";
import {
  DEFAULT_MIN_CONFIDENCE,
  loadNoveltyIndex,
  type NoveltyIndex,
  type ReviewFlags,
  reviewFlags,
} from "./review.js";
import { createSession, runOutputs, type Session, type SessionOptions } from "./session.js";
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
  /** A person should check this one: low calibrated confidence, or unlike the training data. */
  needsReview: boolean;
  review: ReviewFlags;
  /**
   * The model's pooled features for the image (the original view under TTA), a copy the caller may keep or
   * transfer; null when the manifest names no embedding output.
   */
  embedding: Float32Array | null;
}

export interface Failure {
  ok: false;
  error: { code: ImageErrorCode; message: string };
}

export type Outcome = Prediction | Failure;

export type Decoded = Pixels | ImageError;

export interface ClassifyOptions {
  topK?: number;
  /** Called after each chunk of maxBatch images with the number finished so far. */
  onProgress?: (done: number) => void;
}

export interface Classifier {
  readonly manifest: ModelManifest;
  readonly classes: readonly string[];
  /** Classifies many images with as few session.run calls as maxBatch allows; never throws for bad images. */
  classify(inputs: readonly ImageInput[], opts?: ClassifyOptions): Promise<Outcome[]>;
  /** Runs already-decoded pixels (the worker decodes while the previous batch runs). */
  classifyPixels(pixels: readonly Pixels[], opts?: { topK?: number }): Promise<Prediction[]>;
  /** Runs what decoded and passes decoding failures through, keeping the input order. */
  classifyDecoded(decoded: readonly Decoded[], opts?: { topK?: number }): Promise<Outcome[]>;
  decode(input: ImageInput): Promise<Pixels>;
  /** Decodes concurrently; a bad image becomes its ImageError instead of rejecting the whole call. */
  decodeMany(inputs: readonly ImageInput[]): Promise<Decoded[]>;
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
  const novelty = manifest.review ? await loadNoveltyIndex(manifestPath, manifest.review) : null;
  if (novelty && !manifest.output.embedding) {
    throw new Error(`manifest ${manifestPath} has reference embeddings but names no embedding output`);
  }
  const session = await createSession(opts.model, opts);
  return new OnnxClassifier(session, manifest, opts, novelty);
}

class OnnxClassifier implements Classifier {
  readonly classes: readonly string[];
  private readonly maxBatch: number;

  constructor(
    private readonly session: Session,
    readonly manifest: ModelManifest,
    private readonly opts: ClassifierOptions,
    private readonly novelty: NoveltyIndex | null = null,
  ) {
    this.classes = manifest.classes;
    this.maxBatch = Math.max(1, opts.maxBatch ?? 32);
  }

  decode(input: ImageInput): Promise<Pixels> {
    return decodeImage(input, this.manifest.input, this.opts.limits);
  }

  decodeMany(inputs: readonly ImageInput[]): Promise<Decoded[]> {
    return Promise.all(inputs.map((input) => this.decode(input).catch(toImageError)));
  }

  /**
   * Works in chunks of maxBatch, decoding the next chunk (on libuv's threads, inside sharp) while the current
   * one runs through the model, so the CPU does not wait on JPEG decoding.
   */
  async classify(inputs: readonly ImageInput[], opts: ClassifyOptions = {}): Promise<Outcome[]> {
    const outcomes: Outcome[] = [];
    const decodeChunk = (start: number) => this.decodeMany(inputs.slice(start, start + this.maxBatch));
    let next = inputs.length > 0 ? decodeChunk(0) : null;
    for (let start = 0; next; start += this.maxBatch) {
      const decoded = await next;
      next = start + this.maxBatch < inputs.length ? decodeChunk(start + this.maxBatch) : null;
      outcomes.push(...(await this.classifyDecoded(decoded, opts)));
      opts.onProgress?.(outcomes.length);
    }
    return outcomes;
  }

  async classifyDecoded(decoded: readonly Decoded[], opts: { topK?: number } = {}): Promise<Outcome[]> {
    const good = decoded.filter((d): d is Pixels => !(d instanceof ImageError));
    const preds = good.length > 0 ? await this.classifyPixels(good, opts) : [];
    let next = 0;
    return decoded.map((d): Outcome => {
      if (d instanceof ImageError) return { ok: false, error: { code: d.code, message: d.message } };
      const p = preds[next++];
      if (!p) throw new Error("classifier returned fewer predictions than images");
      return p;
    });
  }

  async classifyPixels(pixels: readonly Pixels[], opts: { topK?: number } = {}): Promise<Prediction[]> {
    const spec = this.manifest.input;
    const views = this.opts.tta ? pixels.flatMap((p) => [p, flipPixels(p)]) : [...pixels];
    const size = tensorSize(spec);
    const probs: number[][] = [];
    const distances: (number | null)[] = [];
    const embeddings: (Float32Array | null)[] = [];
    const outputs = [this.manifest.output.name];
    // Fetched whenever the model has it (it is computed on the way to the logits anyway); a model without one
    // runs exactly as before.
    if (this.manifest.output.embedding) outputs.push(this.manifest.output.embedding);
    for (let start = 0; start < views.length; start += this.maxBatch) {
      const chunk = views.slice(start, start + this.maxBatch);
      const batch = new Float32Array(chunk.length * size);
      chunk.forEach((p, i) => {
        writeTensor(p, spec, batch, i * size);
      });
      const [logits, embedding] = await runOutputs(
        this.session,
        batch,
        [chunk.length, 3, spec.height, spec.width],
        spec.name,
        outputs,
      );
      const { data, width } = logits as { data: Float32Array; width: number };
      for (let i = 0; i < chunk.length; i++) {
        const row = data.subarray(i * width, (i + 1) * width);
        probs.push(
          this.manifest.output.kind === "logits" ? softmax(row, this.manifest.temperature) : Array.from(row),
        );
        // With TTA only the original (even) view's distance is read below; skip the mirror's k-NN search.
        const mirror = this.opts.tta === true && (start + i) % 2 === 1;
        const features =
          embedding && !mirror ? embedding.data.slice(i * embedding.width, (i + 1) * embedding.width) : null;
        embeddings.push(features);
        distances.push(features && this.novelty ? this.novelty.distance(features) : null);
      }
    }
    const k = opts.topK ?? 3;
    const reviewSpec = this.manifest.review ?? { minConfidence: DEFAULT_MIN_CONFIDENCE };
    return pixels.map((_, i) => {
      const p = this.opts.tta
        ? average(probs[2 * i] as number[], probs[2 * i + 1] as number[])
        : (probs[i] as number[]);
      // With TTA the original view's distance decides: the mirror is no less familiar.
      const distance = distances[this.opts.tta ? 2 * i : i] ?? null;
      const embedding = embeddings[this.opts.tta ? 2 * i : i] ?? null;
      const top = topK(p, this.classes, k);
      const best = top[0] as Scored;
      const review = reviewFlags(best.confidence, distance, reviewSpec);
      return {
        ok: true,
        label: best.label,
        confidence: best.confidence,
        top,
        probabilities: p,
        needsReview: review.needsReview,
        review,
        embedding,
      };
    });
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

function average(a: number[], b: number[]): number[] {
  return a.map((x, i) => (x + (b[i] as number)) / 2);
}
