import { endianness } from "node:os";
import { sql } from "drizzle-orm";
import type { DbOrTx } from "./client";
import { siteIn } from "./scope";

export interface SimilarImage {
  imageId: string;
  batchId: string;
  filename: string | null;
  /** The reviewed label. */
  label: string;
  /** Cosine distance (1 - cosine similarity) between the two embeddings. */
  distance: number;
}

const LITTLE_ENDIAN = endianness() === "LE";

/** Reads little-endian float32 bytes as written by recordResults. */
export function decodeEmbedding(data: Buffer): Float32Array {
  // A copy: the driver's Buffer may not be 4-byte aligned, which a Float32Array view requires.
  if (LITTLE_ENDIAN)
    return new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length));
  const out = new Float32Array(data.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = data.readFloatLE(i * 4);
  return out;
}

function normalise(v: Float32Array): Float32Array {
  let sum = 0;
  for (const x of v) sum += x * x;
  const norm = Math.sqrt(sum) || 1;
  return v.map((x) => x / norm);
}

/**
 * The k reviewed images nearest to `imageId` by the model's embedding, among `sites`, counting only images
 * classified by the same model version: another model's embedding has the same width but lives in a different
 * space, so after a model update its distances would be noise. An exact scan over the reviewed images'
 * embeddings: reviews are made by people, so there are thousands, not millions; past that this wants an index
 * (pgvector). Empty when the image has no embedding.
 */
export async function nearestReviewed(
  db: DbOrTx,
  options: { imageId: string; sites: readonly string[] | null; k: number },
): Promise<SimilarImage[]> {
  const own = await db.execute<{ data: Buffer; model_version: string | null }>(
    sql`select e.data, r.model_version from result_embeddings e join results r on r.image_id = e.image_id
      where e.image_id = ${options.imageId}`,
  );
  const ownRow = own.rows[0];
  if (!ownRow) return [];
  const query = normalise(decodeEmbedding(ownRow.data));
  const candidates = await db.execute<{
    image_id: string;
    batch_id: string;
    filename: string | null;
    label: string;
    data: Buffer;
  }>(sql`
    select rv.image_id, i.batch_id, i.filename, rv.label, e.data
    from reviews rv join images i on i.id = rv.image_id join result_embeddings e on e.image_id = rv.image_id
      join results r on r.image_id = rv.image_id
    where rv.image_id <> ${options.imageId} and e.dims = ${query.length}
      and r.model_version is not distinct from ${ownRow.model_version}
      and ${siteIn(sql`i.site`, options.sites)}`);
  const scored = candidates.rows.map((row): SimilarImage => {
    const v = normalise(decodeEmbedding(row.data));
    let dot = 0;
    for (let i = 0; i < v.length; i++) dot += (v[i] as number) * (query[i] as number);
    return {
      imageId: row.image_id,
      batchId: row.batch_id,
      filename: row.filename,
      label: row.label,
      distance: 1 - dot,
    };
  });
  return scored
    .sort((a, b) => a.distance - b.distance || (a.imageId < b.imageId ? -1 : 1))
    .slice(0, options.k);
}
