/** Bytes needed to recognise every supported format. */
export const SNIFF_BYTES = 16;

const HEIF_BRANDS = new Set(["heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1"]);

/**
 * Content type from magic bytes, or null when the data is not one of the images the model pipeline decodes.
 * The client's declared content type and file name are not trusted.
 */
export function sniffImageType(head: Uint8Array): string | null {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "image/jpeg";
  if (
    b.length >= 8 &&
    b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
  ) {
    return "image/png";
  }
  if (b.length >= 12 && b.toString("latin1", 0, 4) === "RIFF" && b.toString("latin1", 8, 12) === "WEBP") {
    return "image/webp";
  }
  if (b.length >= 6 && (b.toString("latin1", 0, 6) === "GIF87a" || b.toString("latin1", 0, 6) === "GIF89a")) {
    return "image/gif";
  }
  if (b.length >= 4) {
    const tiff = b.subarray(0, 4);
    if (
      tiff.equals(Buffer.from([0x49, 0x49, 0x2a, 0x00])) ||
      tiff.equals(Buffer.from([0x4d, 0x4d, 0x00, 0x2a]))
    ) {
      return "image/tiff";
    }
  }
  if (b.length >= 12 && b.toString("latin1", 4, 8) === "ftyp") {
    const brand = b.toString("latin1", 8, 12);
    if (brand === "avif" || brand === "avis") return "image/avif";
    if (HEIF_BRANDS.has(brand)) return "image/heif";
  }
  return null;
}
