export { type AppendHeadOptions, appendLinearHead, type DenseLayer } from "./append-head";
export {
  DEFAULT_RESNET_CACHE,
  ensureResnetPackage,
  RESNET_INTEGRITY,
  RESNET_PACKAGE,
  RESNET_VERSION,
  readImagenetLabels,
  resnetModelDir,
} from "./fetch-resnet";
export { type BatchNormParams, foldBatchNorm, kernelToOihw } from "./kernels";
export {
  CAFFE_INPUT,
  convertResnet50,
  type FeaturesManifest,
  type ResnetOutputMode,
  resnetConvertOptions,
  type WrittenModel,
  writeResnetModels,
} from "./resnet";
export {
  type KerasLayer,
  type LayersModelArtifacts,
  loadArtifactsFromDir,
  type ParsedLayersModel,
  parseLayersModel,
  type WeightSpec,
} from "./tfjs-model";
export {
  type ConvertOptions,
  convertLayersModel,
  type LayersModelSource,
  loadLayersModelSource,
  tfjsToOnnx,
} from "./tfjs-to-onnx";
