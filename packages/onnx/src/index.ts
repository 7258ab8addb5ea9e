export { type Attribute, float, floats, int, ints, str } from "./attributes";
export {
  type GraphBuilderOptions,
  type InitializerInfo,
  type NodeInfo,
  OnnxGraphBuilder,
} from "./graph-builder";
export { DataType, type ElemType, IR_VERSION, OPSET, onnx } from "./proto";
export type { Dim, ValueInfo } from "./tensors";
export {
  buildTinyClassifier,
  prng,
  type TinyClassifierOptions,
  type TinyClassifierWeights,
  type TinyModelFiles,
  tinyClassifierWeights,
  writeTinyModel,
} from "./tiny-classifier";
export { floatToHalf, type TinyReviewModelFiles, writeTinyReviewModel } from "./tiny-review";
