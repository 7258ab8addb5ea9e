/** Builds the web UI into `outdir` (default apps/web/dist); resolves to the main bundle's size in bytes. */
export function buildWeb(options?: { outdir?: string; minify?: boolean }): Promise<number>;
