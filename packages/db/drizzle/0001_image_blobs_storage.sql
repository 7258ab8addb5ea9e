-- Uploaded images are already compressed (JPEG/PNG/WebP...): skip pglz attempts but keep out-of-line TOAST storage.
ALTER TABLE "image_blobs" ALTER COLUMN "data" SET STORAGE EXTERNAL;
