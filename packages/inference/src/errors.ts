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

export class ProviderUnavailableError extends Error {
  override name = "ProviderUnavailableError";
}
