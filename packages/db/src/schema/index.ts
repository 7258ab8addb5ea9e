export * from "./api-keys";
export * from "./batches";
export * from "./class-stats";
export * from "./embeddings";
export * from "./image-blobs";
export * from "./images";
export * from "./results";
export * from "./reviews";
