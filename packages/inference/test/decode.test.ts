import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { crc32 } from "node:zlib";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { decodeImage, ImageError, inputSpecSchema } from "../src/index.js";

const spec = inputSpecSchema.parse({ width: 16, height: 16, channelOrder: "RGB", scale: 1, mean: [0, 0, 0] });
const red = { r: 220, g: 20, b: 20 };

function solid(width: number, height: number, colour = red) {
  return sharp({ create: { width, height, channels: 3, background: colour } });
}

function meanRgb(data: Buffer): [number, number, number] {
  const s = [0, 0, 0];
  for (let i = 0; i < data.length; i++) s[i % 3] = (s[i % 3] as number) + (data[i] as number);
  const n = data.length / 3;
  return [(s[0] as number) / n, (s[1] as number) / n, (s[2] as number) / n];
}

async function expectImageError(p: Promise<unknown>, code: string) {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ImageError);
  expect((err as ImageError).code).toBe(code);
}

describe("decodeImage", () => {
  const formats = {
    jpeg: () => solid(40, 30).jpeg().toBuffer(),
    png: () => solid(40, 30).png().toBuffer(),
    webp: () => solid(40, 30).webp().toBuffer(),
    gif: () => solid(40, 30).gif().toBuffer(),
    tiff: () => solid(40, 30).tiff().toBuffer(),
    avif: () => solid(40, 30).avif().toBuffer(),
  };
  for (const [name, make] of Object.entries(formats)) {
    it(`decodes ${name} to 8-bit RGB at the input size`, async () => {
      const px = await decodeImage(await make(), spec);
      expect([px.width, px.height, px.data.length]).toEqual([16, 16, 16 * 16 * 3]);
      const [r, g, b] = meanRgb(px.data);
      expect(r).toBeGreaterThan(180);
      expect(g).toBeLessThan(60);
      expect(b).toBeLessThan(60);
    });
  }

  it("reads from a file path", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "decode-"));
    const file = path.join(dir, "a.png");
    await writeFile(file, await solid(10, 10).png().toBuffer());
    expect((await decodeImage(file, spec)).data.length).toBe(16 * 16 * 3);
    await expectImageError(decodeImage(path.join(dir, "missing.png"), spec), "unreadable");
  });

  it("applies EXIF orientation before resizing", async () => {
    // Left half red, right half blue, stored rotated: orientation 6 means "rotate 90° clockwise to view".
    const raw = Buffer.alloc(20 * 10 * 3);
    for (let y = 0; y < 10; y++)
      for (let x = 0; x < 20; x++) raw.set(x < 10 ? [255, 0, 0] : [0, 0, 255], (y * 20 + x) * 3);
    const jpg = await sharp(raw, { raw: { width: 20, height: 10, channels: 3 } })
      .jpeg({ quality: 100 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const px = await decodeImage(jpg, spec);
    // After a clockwise turn the red half is on top.
    const top = meanRgb(px.data.subarray(0, 16 * 4 * 3));
    const bottom = meanRgb(px.data.subarray(16 * 12 * 3));
    expect(top[0]).toBeGreaterThan(200);
    expect(bottom[2]).toBeGreaterThan(200);
  });

  it("flattens alpha onto white", async () => {
    const png = await sharp({
      create: { width: 8, height: 8, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } },
    })
      .png()
      .toBuffer();
    const [r, g, b] = meanRgb((await decodeImage(png, spec)).data);
    expect(Math.min(r, g, b)).toBeGreaterThan(250);
  });

  it("converts greyscale, 16-bit and CMYK inputs to sRGB", async () => {
    const grey = await solid(20, 20, { r: 128, g: 128, b: 128 }).toColourspace("b-w").png().toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    const g = meanRgb((await decodeImage(grey, spec)).data);
    g.forEach((v) => {
      expect(v).toBeGreaterThan(110);
      expect(v).toBeLessThan(145);
    });

    const sixteen = await solid(20, 20).toColourspace("rgb16").png().toBuffer();
    expect((await sharp(sixteen).metadata()).depth).toBe("ushort");
    expect(meanRgb((await decodeImage(sixteen, spec)).data)[0]).toBeGreaterThan(180);

    const cmyk = await solid(20, 20).toColourspace("cmyk").jpeg().toBuffer();
    expect((await sharp(cmyk).metadata()).space).toBe("cmyk");
    const c = meanRgb((await decodeImage(cmyk, spec)).data);
    expect(c[0]).toBeGreaterThan(150);
    expect(c[2]).toBeLessThan(90);
  });

  it("refuses undecodable bytes, unsupported formats, oversized files and decompression bombs", async () => {
    await expectImageError(decodeImage(Buffer.from("definitely not an image"), spec), "unsupported_format");
    const jpg = await solid(64, 64).jpeg().toBuffer();
    await expectImageError(decodeImage(jpg.subarray(0, 40), spec), "corrupt");
    const svg = Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
    );
    await expectImageError(decodeImage(svg, spec), "unsupported_format");
    await expectImageError(decodeImage(jpg, spec, { maxBytes: 100 }), "too_large");
    // A 70-byte PNG whose header claims 30000x30000 pixels: refused from the header, nothing allocated.
    const bomb = await solid(1, 1).png().toBuffer();
    bomb.writeUInt32BE(30000, 16);
    bomb.writeUInt32BE(30000, 20);
    bomb.writeUInt32BE(crc32(bomb.subarray(12, 29)), 29);
    await expectImageError(decodeImage(bomb, spec, { maxPixels: 50_000_000 }), "too_many_pixels");
  });
});
