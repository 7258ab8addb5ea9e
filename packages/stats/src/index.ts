export {
  type AuditCount,
  type ClassQuality,
  type EstimateOptions,
  estimateQuality,
  METHOD,
  MIN_AUDITS,
  MIN_CLASS_AUDITS,
  type QualityEstimate,
} from "./audit-estimate";
export { auditPicked } from "./audit-pick";
export { type Interval, sampleSizeFor, wilson, Z95 } from "./wilson";
