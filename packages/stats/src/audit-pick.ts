import { createHash } from "node:crypto";

/**
 * Whether an image is picked for a blind audit at `rate`: a hash of its id, not Math.random, so a retried
 * job (or another worker) picks the same images. Image ids are random uuids, so the pick is independent of
 * the photo, the label and the review flag, which is what makes the audits a uniform sample. The "audit:"
 * prefix keeps it independent of the shadow sample, which hashes the bare id.
 */
export function auditPicked(imageId: string, rate: number): boolean {
  if (!(rate > 0)) return false;
  return createHash("sha256").update(`audit:${imageId}`).digest().readUInt32BE(0) / 2 ** 32 < rate;
}
