import { createRequire } from "node:module";

// onnx-proto is a CommonJS bundle whose namespace Node's ESM loader cannot see as a named export.
const require = createRequire(import.meta.url);
export const { onnx } = require("onnx-proto") as typeof import("onnx-proto");

/** ONNX TensorProto.DataType values for the element types this package writes. */
export const DataType = { float32: 1, int64: 7 } as const;
export type ElemType = keyof typeof DataType;

export const OPSET = 13;
export const IR_VERSION = 7;

type IntLike = number | { toNumber(): number } | null | undefined;

/** protobufjs decodes int64 fields as Long objects once the `long` package is installed. */
export function toNumber(value: IntLike): number {
  if (value == null) return 0;
  return typeof value === "number" ? value : value.toNumber();
}

export function elemTypeOf(dataType: number): ElemType | undefined {
  for (const [name, code] of Object.entries(DataType)) if (code === dataType) return name as ElemType;
  return undefined;
}
