ALTER TABLE "batches" ADD COLUMN "chunk_size" integer DEFAULT 16 NOT NULL;--> statement-breakpoint
CREATE INDEX "batches_open_idx" ON "batches" USING btree ("created_at") WHERE "batches"."completed_at" is null;--> statement-breakpoint
ALTER TABLE "batches" ADD CONSTRAINT "batches_chunk_size_check" CHECK ("batches"."chunk_size" > 0);