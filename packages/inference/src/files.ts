import { readdir, stat } from "node:fs/promises";
import path from "node:path";

const IMAGE_EXT = /\.(jpe?g|png|webp|gif|tiff?|avif|heic|heif)$/i;

export function isImageFile(file: string): boolean {
  return IMAGE_EXT.test(file);
}

/** Expands files and folders (recursively) into image paths, sorted so runs are reproducible. */
export async function listImages(targets: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const target of targets) {
    const st = await stat(target);
    if (st.isDirectory()) out.push(...(await walk(target)));
    else out.push(target);
  }
  return out;
}

async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out: string[] = [];
  for (const e of entries) {
    const full = path.join(dir, e.name);
    // Follow symbolic links: datasets are often assembled from links into a shared store.
    const kind = e.isSymbolicLink() ? await stat(full).catch(() => null) : e;
    if (kind?.isDirectory()) out.push(...(await walk(full)));
    else if (kind?.isFile() && isImageFile(e.name)) out.push(full);
  }
  return out;
}

export interface LabelledImage {
  file: string;
  /** Index into `classes`, or -1 for a folder the model does not know. */
  label: number;
  folder: string;
}

/** Reads an ImageFolder tree (`<root>/<class>/<image>`), labelling by the model's class list. */
export async function listImageFolder(root: string, classes: readonly string[]): Promise<LabelledImage[]> {
  const dirs = (await readdir(root, { withFileTypes: true }))
    .filter((d) => d.isDirectory())
    .map((d) => d.name);
  if (dirs.length === 0) throw new Error(`${root} has no class folders (expected <root>/<class>/<image>)`);
  dirs.sort();
  const out: LabelledImage[] = [];
  for (const folder of dirs) {
    for (const file of await walk(path.join(root, folder)))
      out.push({ file, label: classes.indexOf(folder), folder });
  }
  return out;
}
