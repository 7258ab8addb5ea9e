// Shapes of the API's JSON as the UI reads them (see /openapi.json and docs of issue 9's contract).

export interface Scored {
  label: string;
  confidence: number;
}

export interface Me {
  name: string | null;
  sites: string[] | null;
  visibleSites: string[];
  classes: string[];
}

export interface Batch {
  id: string;
  status: string;
  total: number;
  processed: number;
  failed: number;
  site: string | null;
  line: string | null;
  camera: string | null;
  createdAt: string;
  completedAt: string | null;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface Review {
  label: string;
  reviewer: string | null;
  reviewedAt: string;
}

export interface ResultItem {
  imageId: string;
  filename: string | null;
  status: "queued" | "ok" | "failed";
  label: string | null;
  confidence: number | null;
  top: Scored[];
  needsReview: boolean | null;
  reviewReasons: string[];
  review?: Review | null;
  effectiveLabel?: string | null;
  error: { code: string; message: string | null } | null;
}

export interface Classification {
  label: string;
  confidence: number;
  top: Scored[];
  needsReview: boolean;
  review: { lowConfidence: boolean; unfamiliar: boolean; distance: number | null };
  model: { name: string; version: string };
}

export interface ReviewItem {
  kind: "review";
  imageId: string;
  batchId: string;
  filename: string | null;
  site: string | null;
  line: string | null;
  label: string;
  confidence: number;
  top: Scored[];
  reviewReasons: string[];
  novelty: number | null;
  createdAt: string;
}

/** A blind audit: the API sends nothing of the model's answer. */
export interface AuditItem {
  kind: "audit";
  imageId: string;
  batchId: string;
  filename: string | null;
  site: string | null;
  line: string | null;
  createdAt: string;
}

export type QueueItem = ReviewItem | AuditItem;

export interface ReviewPage extends Page<QueueItem> {
  remaining: number;
}

export interface SimilarItem {
  imageId: string;
  batchId: string;
  filename: string | null;
  label: string;
  distance: number;
}

export interface StatsClass {
  label: string;
  count: number;
  share: number;
  needsReview: number;
}

export interface StatsBucket {
  bucket: string;
  total: number;
  failed: number;
  counts: Record<string, number>;
  needsReview: number;
  reviewed?: number;
  changed?: number;
  changedRate?: number | null;
}

export interface Stats {
  from: string;
  to: string;
  bucket: string;
  total: number;
  classified: number;
  failed: number;
  needsReview: number;
  reviewRate: number;
  reviewed?: number;
  changed?: number;
  changedRate?: number | null;
  classes: StatsClass[];
  series: StatsBucket[];
  quality?: Quality;
}

export interface Interval {
  estimate: number;
  low: number;
  high: number;
  level: number;
}

/** /v1/stats' audit estimates (apps/api/src/quality.ts). */
export interface Quality {
  method: string;
  level: number;
  images: number;
  audited: number;
  backlog: number;
  reviewed: number;
  minAudits: number;
  needed: number;
  moreAuditsToHalve: number | null;
  accuracy: Interval | null;
  unflagged: { images: number; audited: number; needed: number; accuracy: Interval | null };
  classes: {
    label: string;
    raw: number;
    audited: number;
    share: Interval | null;
    precision: Interval | null;
    precisionNeeded: number;
  }[];
}

export interface ModelInfo {
  name: string;
  version: string;
  classes: string[];
  review: Record<string, unknown> | null;
  metrics: Metrics[];
  embedding?: boolean;
  report: null | {
    generatedAt: string;
    metrics: Metrics;
    confusion: { labels: string[]; matrix: number[][] };
    misclassified: {
      file: string;
      truth: string;
      predicted: string;
      confidence: number;
      thumbnail: string;
    }[];
  };
}

/** One evaluation's metrics (manifest or report); only the fields the UI shows are typed. */
export interface Metrics {
  dataset?: string;
  n?: number;
  accuracy?: number;
  macroF1?: number;
  ece?: number;
  classes?: string[];
  confusion?: number[][];
  review?: { flaggedRate?: number; confidentAccuracy?: number };
  [key: string]: unknown;
}

export type ModelState = "candidate" | "shadow" | "active" | "retired";

/** A registered model version (GET /v1/models). */
export interface ModelVersionInfo {
  id: string;
  name: string;
  version: string;
  modelVersion: string;
  state: ModelState;
  sites: string[] | null;
  trainedOn: {
    sites: string[] | null;
    images: number;
    perClass: Record<string, number>;
    source: string;
  } | null;
  dataUntil: string | null;
  int8: boolean;
  createdAt: string;
  createdBy: string | null;
}

export interface ModelAssignment {
  site: string;
  versionId: string;
  modelVersion: string;
  previousVersionId: string | null;
  assignedAt: string;
  assignedBy: string | null;
}

export interface ModelRegistry {
  default: string | null;
  versions: ModelVersionInfo[];
  assignments: ModelAssignment[];
}

/** GET /v1/models/{id}/compare: a candidate against the version active for each image's site. */
export interface ModelComparison {
  candidate: string;
  site: string | null;
  reviewed: {
    images: number;
    candidate: { correct: number; accuracy: number };
    active: { correct: number; accuracy: number };
    perClass: { label: string; n: number; candidateRecall: number; activeRecall: number }[];
  };
  live: { images: number; agreement: number; candidateReviewRate: number; activeReviewRate: number };
  changes: { from: string; to: string; n: number }[];
}

export interface SiteThreshold {
  site: string;
  modelVersion: string;
  minConfidence: number;
  maxDistance: number | null;
  reviewed: number;
  coverage: number;
  unflaggedAccuracy: number;
  target: number;
  computedAt: string;
}
