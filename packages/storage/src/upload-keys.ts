/** Folder of every upload the API stores; the orphan sweep looks nowhere else. */
export const UPLOAD_PREFIX = "batches/";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Named after the image row the upload will get, so a key alone says which row should point at it. */
export function uploadKey(batchId: string, imageId: string): string {
  return `${UPLOAD_PREFIX}${batchId}/${imageId}`;
}

/** The ids in a key made by uploadKey, or null for any other key (which the sweep then never deletes). */
export function parseUploadKey(key: string): { batchId: string; imageId: string } | null {
  if (!key.startsWith(UPLOAD_PREFIX)) return null;
  const [batchId, imageId, ...rest] = key.slice(UPLOAD_PREFIX.length).split("/");
  if (rest.length > 0 || !batchId || !imageId || !UUID.test(batchId) || !UUID.test(imageId)) return null;
  return { batchId, imageId };
}
