import type { onnx as OnnxNs } from "onnx-proto";
import { onnx, toNumber } from "./proto";

/**
 * ONNX distinguishes int and float attributes (kernel_shape must be INTS, epsilon must be FLOAT), which a bare
 * JS number cannot express, so attribute values are tagged.
 */
export type Attribute =
  | { int: number }
  | { float: number }
  | { ints: readonly number[] }
  | { floats: readonly number[] }
  | { string: string };

export const int = (value: number): Attribute => ({ int: value });
export const float = (value: number): Attribute => ({ float: value });
export const ints = (values: readonly number[]): Attribute => ({ ints: values });
export const floats = (values: readonly number[]): Attribute => ({ floats: values });
export const str = (value: string): Attribute => ({ string: value });

const T = onnx.AttributeProto.AttributeType;

export function encodeAttribute(name: string, attr: Attribute): OnnxNs.IAttributeProto {
  if ("int" in attr) {
    if (!Number.isInteger(attr.int)) throw new Error(`attribute ${name}: ${attr.int} is not an integer`);
    return { name, type: T.INT, i: attr.int };
  }
  if ("float" in attr) return { name, type: T.FLOAT, f: attr.float };
  if ("ints" in attr) {
    if (!attr.ints.every(Number.isInteger))
      throw new Error(`attribute ${name}: [${attr.ints}] has non-integers`);
    return { name, type: T.INTS, ints: [...attr.ints] };
  }
  if ("floats" in attr) return { name, type: T.FLOATS, floats: [...attr.floats] };
  return { name, type: T.STRING, s: new TextEncoder().encode(attr.string) };
}

/** Inverse of encodeAttribute for the attribute kinds above; other kinds (graphs, tensors) come back as undefined. */
export function decodeAttribute(proto: OnnxNs.IAttributeProto): Attribute | undefined {
  switch (proto.type) {
    case T.INT:
      return { int: toNumber(proto.i) };
    case T.FLOAT:
      return { float: proto.f ?? 0 };
    case T.INTS:
      return { ints: (proto.ints ?? []).map(toNumber) };
    case T.FLOATS:
      return { floats: [...(proto.floats ?? [])] };
    case T.STRING:
      return { string: new TextDecoder().decode(proto.s ?? new Uint8Array()) };
    default:
      return undefined;
  }
}
