import path from "node:path";
import { assertValidKey } from "@garbage/storage";
import { ModelFilesError } from "./errors";

/** Every file of a version lives under the sha256 of its float onnx, so keys never collide across versions. */
export const MODEL_PREFIX = "models/";

export function modelKey(sha256: string, file: string): string {
  const key = `${MODEL_PREFIX}${sha256}/${path.basename(file)}`;
  try {
    assertValidKey(key);
  } catch {
    throw new ModelFilesError(
      "invalid",
      `file name ${JSON.stringify(path.basename(file))} cannot be stored: use letters, digits, '.', '_' and '-'`,
    );
  }
  return key;
}
