import type { onnx as OnnxNs } from "onnx-proto";
import { DataType, type ElemType, elemTypeOf, toNumber } from "./proto";

/** A dimension is a fixed size or a symbolic name such as "batch" that the runtime binds per call. */
export type Dim = number | string;

export interface ValueInfo {
  name: string;
  elemType: ElemType | undefined;
  dims: Dim[];
}

export function checkDims(name: string, dims: readonly number[], length: number): void {
  const size = dims.reduce((a, b) => a * b, 1);
  if (!dims.every((d) => Number.isInteger(d) && d >= 0) || size !== length) {
    throw new Error(`tensor ${name}: dims [${dims}] hold ${size} values but data has ${length}`);
  }
}

/** Stored as raw little-endian bytes: far smaller and faster to encode than the repeated float_data field. */
export function float32Tensor(
  name: string,
  data: Float32Array,
  dims: readonly number[],
): OnnxNs.ITensorProto {
  checkDims(name, dims, data.length);
  const bytes = new Uint8Array(data.byteLength);
  bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return { name, dims: [...dims], dataType: DataType.float32, rawData: bytes };
}

export function int64Tensor(
  name: string,
  data: readonly number[],
  dims: readonly number[],
): OnnxNs.ITensorProto {
  checkDims(name, dims, data.length);
  const values = new BigInt64Array(data.map((v) => BigInt(v)));
  return { name, dims: [...dims], dataType: DataType.int64, rawData: new Uint8Array(values.buffer) };
}

export function tensorToFloat32(tensor: OnnxNs.ITensorProto): Float32Array {
  const name = tensor.name ?? "?";
  if (tensor.dataType !== DataType.float32) {
    throw new Error(`initializer ${name} has data type ${tensor.dataType}, not float32`);
  }
  const size = (tensor.dims ?? []).map(toNumber).reduce((a, b) => a * b, 1);
  const raw = tensor.rawData;
  let out: Float32Array;
  if (raw && raw.length > 0) {
    // Decoded raw_data is a view into the model buffer (often a Buffer, whose slice() does not copy) at an
    // arbitrary offset, so copy into fresh aligned memory before viewing it as floats.
    const copy = new Uint8Array(raw.length);
    copy.set(raw);
    out = new Float32Array(copy.buffer);
  } else {
    out = Float32Array.from(tensor.floatData ?? []);
  }
  if (out.length !== size) throw new Error(`initializer ${name}: ${out.length} values for ${size} elements`);
  return out;
}

export function valueInfoProto(
  name: string,
  elemType: ElemType,
  dims: readonly Dim[],
): OnnxNs.IValueInfoProto {
  const dim = dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d }));
  return { name, type: { tensorType: { elemType: DataType[elemType], shape: { dim } } } };
}

export function parseValueInfo(proto: OnnxNs.IValueInfoProto): ValueInfo {
  const tensorType = proto.type?.tensorType;
  const dims = (tensorType?.shape?.dim ?? []).map(
    (d): Dim => (d.dimParam ? d.dimParam : toNumber(d.dimValue)),
  );
  return { name: proto.name ?? "", elemType: elemTypeOf(tensorType?.elemType ?? 0), dims };
}
