import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { decodeImage, type InputSpec, type LabelledImage, tensorSize, writeTensor } from "@garbage/inference";

export interface ValTensors {
  /** float32 [n, 3, h, w], exactly what the serving path feeds the model. */
  file: string;
  /** JSON [{file, label}] in the same order, for the Python side. */
  list: string;
  data: Float32Array;
}

/** Decodes the validation images once through the serving decoder, for selection and export checks. */
export async function writeValTensors(
  items: LabelledImage[],
  spec: InputSpec,
  dir: string,
): Promise<ValTensors> {
  const key = createHash("sha256")
    .update(JSON.stringify({ spec, files: items.map((i) => i.file) }))
    .digest("hex")
    .slice(0, 16);
  const file = path.join(dir, `val-${key}.f32`);
  const list = path.join(dir, `val-${key}.json`);
  const size = tensorSize(spec);
  try {
    const buf = await readFile(file);
    return { file, list, data: new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4) };
  } catch {
    // not written yet
  }
  const data = new Float32Array(items.length * size);
  for (let i = 0; i < items.length; i += 16) {
    const chunk = items.slice(i, i + 16);
    const pixels = await Promise.all(chunk.map((it) => decodeImage(it.file, spec)));
    pixels.forEach((p, j) => {
      writeTensor(p, spec, data, (i + j) * size);
    });
  }
  await mkdir(dir, { recursive: true });
  await writeFile(list, JSON.stringify(items.map((i) => ({ file: i.file, label: i.label }))));
  await writeFile(`${file}.tmp`, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  await rename(`${file}.tmp`, file);
  return { file, list, data };
}
