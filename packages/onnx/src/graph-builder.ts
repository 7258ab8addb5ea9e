import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { onnx as OnnxNs } from "onnx-proto";
import { type Attribute, decodeAttribute, encodeAttribute } from "./attributes";
import { type ElemType, IR_VERSION, OPSET, onnx, toNumber } from "./proto";
import {
  type Dim,
  float32Tensor,
  int64Tensor,
  parseValueInfo,
  tensorToFloat32,
  type ValueInfo,
  valueInfoProto,
} from "./tensors";

export interface NodeInfo {
  name: string;
  opType: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, Attribute | undefined>;
}

export interface InitializerInfo {
  name: string;
  dims: number[];
  dataType: number;
}

export interface GraphBuilderOptions {
  graphName?: string;
  opset?: number;
  producerName?: string;
  docString?: string;
}

/**
 * Builds an ONNX graph node by node. Every tensor name is checked as it is used (inputs must already exist,
 * outputs must be new), so a wiring mistake fails where it is made instead of as an opaque runtime load error.
 */
export class OnnxGraphBuilder {
  private readonly nodeProtos: OnnxNs.INodeProto[] = [];
  private readonly initializerProtos = new Map<string, OnnxNs.ITensorProto>();
  private readonly inputProtos: OnnxNs.IValueInfoProto[] = [];
  private outputProtos: OnnxNs.IValueInfoProto[] = [];
  private readonly tensorNames = new Set<string>();
  private readonly nodeNames = new Set<string>();
  private readonly modelFields: OnnxNs.IModelProto;
  private readonly graphName: string;

  constructor(options: GraphBuilderOptions = {}) {
    this.graphName = options.graphName ?? "graph";
    this.modelFields = {
      irVersion: IR_VERSION,
      opsetImport: [{ domain: "", version: options.opset ?? OPSET }],
      producerName: options.producerName ?? "garbage-sort",
      docString: options.docString ?? "",
    };
  }

  /** Loads an existing model so that it can be extended; its IR version, opsets and metadata are kept. */
  static fromModel(bytes: Uint8Array): OnnxGraphBuilder {
    const model = onnx.ModelProto.decode(bytes);
    const graph = model.graph;
    if (!graph) throw new Error("ONNX model has no graph");
    const builder = new OnnxGraphBuilder({ graphName: graph.name || "graph" });
    Object.assign(builder.modelFields, {
      irVersion: toNumber(model.irVersion),
      opsetImport: model.opsetImport,
      producerName: model.producerName,
      producerVersion: model.producerVersion,
      docString: model.docString,
      metadataProps: model.metadataProps,
    });
    for (const init of graph.initializer ?? []) builder.registerInitializer(init);
    for (const input of graph.input ?? []) {
      // Models from IR < 4 also list initializers as inputs; the name is then already registered.
      builder.inputProtos.push(input);
      builder.tensorNames.add(input.name ?? "");
    }
    for (const node of graph.node ?? []) builder.pushNode(node);
    builder.outputProtos = [...(graph.output ?? [])];
    return builder;
  }

  static async readFile(file: string): Promise<OnnxGraphBuilder> {
    return OnnxGraphBuilder.fromModel(await readFile(file));
  }

  has(name: string): boolean {
    return this.tensorNames.has(name);
  }

  /** `base` if unused, else `base_1`, `base_2`, ... */
  uniqueName(base: string): string {
    let name = base;
    for (let i = 1; this.tensorNames.has(name) || this.nodeNames.has(name); i++) name = `${base}_${i}`;
    return name;
  }

  addInput(name: string, dims: readonly Dim[], elemType: ElemType = "float32"): string {
    this.claim(name);
    this.inputProtos.push(valueInfoProto(name, elemType, dims));
    return name;
  }

  addOutput(name: string, dims: readonly Dim[], elemType: ElemType = "float32"): string {
    if (this.outputProtos.some((o) => o.name === name)) throw new Error(`${name} is already a graph output`);
    this.outputProtos.push(valueInfoProto(name, elemType, dims));
    return name;
  }

  /** Stops exposing an output (the tensor stays in the graph, e.g. to feed a new head). */
  removeOutput(name: string): ValueInfo {
    const index = this.outputProtos.findIndex((o) => o.name === name);
    const removed = this.outputProtos[index];
    if (!removed)
      throw new Error(`${name} is not a graph output (outputs: ${this.outputNames().join(", ")})`);
    this.outputProtos.splice(index, 1);
    return parseValueInfo(removed);
  }

  addInitializer(name: string, data: Float32Array, dims: readonly number[]): string {
    this.claim(name);
    this.initializerProtos.set(name, float32Tensor(name, data, dims));
    return name;
  }

  addInt64Initializer(name: string, data: readonly number[], dims: readonly number[]): string {
    this.claim(name);
    this.initializerProtos.set(name, int64Tensor(name, data, dims));
    return name;
  }

  /** Adds a node and returns its output names. An empty input name marks an omitted optional input. */
  addNode(
    opType: string,
    inputs: readonly string[],
    outputs: readonly string[],
    attributes: Record<string, Attribute> = {},
    name?: string,
  ): string[] {
    const node: OnnxNs.INodeProto = {
      name: name ?? this.uniqueName(`${opType}_${this.nodeProtos.length}`),
      opType,
      input: [...inputs],
      output: [...outputs],
      attribute: Object.entries(attributes).map(([key, value]) => encodeAttribute(key, value)),
    };
    this.pushNode(node);
    return [...outputs];
  }

  get nodes(): NodeInfo[] {
    return this.nodeProtos.map((n) => ({
      name: n.name ?? "",
      opType: n.opType ?? "",
      inputs: [...(n.input ?? [])],
      outputs: [...(n.output ?? [])],
      attributes: Object.fromEntries((n.attribute ?? []).map((a) => [a.name ?? "", decodeAttribute(a)])),
    }));
  }

  get inputs(): ValueInfo[] {
    return this.inputProtos.map(parseValueInfo);
  }

  get outputs(): ValueInfo[] {
    return this.outputProtos.map(parseValueInfo);
  }

  get initializers(): InitializerInfo[] {
    return [...this.initializerProtos.values()].map((t) => ({
      name: t.name ?? "",
      dims: (t.dims ?? []).map(toNumber),
      dataType: t.dataType ?? 0,
    }));
  }

  initializer(name: string): Float32Array {
    const tensor = this.initializerProtos.get(name);
    if (!tensor) throw new Error(`no initializer named ${name}`);
    return tensorToFloat32(tensor);
  }

  toModelProto(): OnnxNs.IModelProto {
    const missing = this.outputNames().filter((n) => !this.tensorNames.has(n));
    if (missing.length > 0) throw new Error(`graph outputs never produced: ${missing.join(", ")}`);
    if (this.outputProtos.length === 0) throw new Error("graph has no outputs");
    return {
      ...this.modelFields,
      graph: {
        name: this.graphName,
        node: this.nodeProtos,
        initializer: [...this.initializerProtos.values()],
        input: this.inputProtos,
        output: this.outputProtos,
      },
    };
  }

  toBuffer(): Buffer {
    const bytes = onnx.ModelProto.encode(this.toModelProto()).finish();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  async writeFile(file: string): Promise<void> {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, this.toBuffer());
  }

  private outputNames(): string[] {
    return this.outputProtos.map((o) => o.name ?? "");
  }

  private claim(name: string): void {
    if (!name) throw new Error("tensor names must be non-empty");
    if (this.tensorNames.has(name)) throw new Error(`tensor ${name} is already defined`);
    this.tensorNames.add(name);
  }

  private registerInitializer(tensor: OnnxNs.ITensorProto): void {
    const name = tensor.name ?? "";
    this.claim(name);
    this.initializerProtos.set(name, tensor);
  }

  private pushNode(node: OnnxNs.INodeProto): void {
    const name = node.name ?? "";
    if (name && this.nodeNames.has(name)) throw new Error(`node ${name} is already defined`);
    const undefinedInputs = (node.input ?? []).filter((i) => i !== "" && !this.tensorNames.has(i));
    if (undefinedInputs.length > 0) {
      throw new Error(`node ${name} (${node.opType}) reads undefined tensors: ${undefinedInputs.join(", ")}`);
    }
    for (const output of node.output ?? []) this.claim(output);
    if (name) this.nodeNames.add(name);
    this.nodeProtos.push(node);
  }
}
