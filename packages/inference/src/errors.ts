export type ImageErrorCode =
  | "too_large"
  | "too_many_pixels"
  | "unsupported_format"
  | "corrupt"
  | "unreadable"
  | "timeout";

/** An input image that cannot be classified; `code` is stable and safe to show to API clients. */
export class ImageError extends Error {
  override name = "ImageError";
  constructor(
    readonly code: ImageErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Anything a decoder throws, as an ImageError (unknown failures count as a corrupt image). */
export function toImageError(err: unknown): ImageError {
  if (err instanceof ImageError) return err;
  return new ImageError("corrupt", err instanceof Error ? err.message : String(err));
}

export class ProviderUnavailableError extends Error {
  override name = "ProviderUnavailableError";
}
