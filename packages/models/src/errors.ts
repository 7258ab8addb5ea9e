/**
 * A model's files cannot be published or fetched: `invalid` (a missing or malformed file, a name storage
 * cannot hold) or `checksum` (bytes that differ from what the manifest or the registry row says).
 */
export class ModelFilesError extends Error {
  override name = "ModelFilesError";
  constructor(
    readonly code: "invalid" | "checksum",
    message: string,
  ) {
    super(message);
  }
}
