export {
  type ApiKey,
  createApiKey,
  findActiveApiKey,
  generateApiKey,
  hasApiKeys,
  hashApiKey,
  isApiKeyActive,
  listApiKeys,
  revokeApiKey,
} from "./api-keys";
export {
  type Batch,
  type CreateBatchInput,
  type CreateBatchOutcome,
  createBatch,
  deleteBatch,
  getBatch,
  getBatchByIdempotencyKey,
  type Image,
  listQueueableImages,
  markBatchEnqueued,
  type NewImage,
  type SiteScope,
} from "./batches";
export { type BlobListing, deleteBlob, getBlob, type ImageBlob, listBlobs, putBlob } from "./blobs";
export { getImage, listBatches, visibleSites } from "./browse";
export {
  type CreateDbOptions,
  createDb,
  type Db,
  type DbHandle,
  type DbOrTx,
  pingDb,
  type Schema,
} from "./client";
export { dropDatabase, ensureDatabase, MIGRATIONS_FOLDER, migrate } from "./migrate";
export {
  type PromoteOutcome,
  promoteModelVersion,
  type RollbackOutcome,
  rollbackSites,
  type VersionRef,
} from "./model-promotion";
export {
  ALL_SITES,
  activeModelMap,
  getModelVersion,
  getModelVersionBySha256,
  insertModelVersion,
  listAssignments,
  listModelVersions,
  type ModelAssignment,
  ModelRegistryError,
  type ModelRegistryErrorCode,
  type ModelVersionRow,
  type NewModelVersion,
  normaliseSites,
  setShadow,
} from "./model-registry";
export { getAuditCounts, type QualityQuery, type QualityRow } from "./quality";
export {
  countRepair,
  listOpenBatches,
  listQueuedImages,
  type OpenBatch,
  openImageRepairs,
  type QueuedImage,
  storageKeysOf,
} from "./reconcile";
export {
  type RecordResultsOutcome,
  type ResultInput,
  type ReviewInput,
  recordResults,
} from "./record-results";
export { listResults, type ResultItem, type ResultPage } from "./results-query";
export {
  type AuditItem,
  listReviewedImages,
  listReviewQueue,
  type ReviewedImage,
  type ReviewItem,
  type ReviewQueueItem,
  type ReviewQueueKind,
  type ReviewQueueQuery,
} from "./review-queue";
export { type ReviewOutcome, type ReviewWrite, type StoredReview, writeReview } from "./reviews";
export { histogramBin } from "./rollup";
export * from "./schema/index";
export { siteIn, type TimeCursor } from "./scope";
export {
  type CompareOptions,
  type Comparison,
  compareVersions,
  recordShadowResults,
  type ShadowResultInput,
} from "./shadow";
export { decodeEmbedding, nearestReviewed, type SimilarImage } from "./similar";
export {
  type ComputeThresholdsOptions,
  computeSiteThresholds,
  type Fit,
  type FitSample,
  fitMinConfidence,
  getSiteThresholds,
  type SiteThresholdRow,
  sitesWithReviews,
} from "./site-thresholds";
export { getStats, type StatsBucket, type StatsQuery, type StatsResult, thresholdBins } from "./stats";
