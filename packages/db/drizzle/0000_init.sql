CREATE TYPE "public"."batch_status" AS ENUM('queued', 'processing', 'completed', 'completed_with_errors');--> statement-breakpoint
CREATE TYPE "public"."result_status" AS ENUM('ok', 'failed');--> statement-breakpoint
CREATE TABLE "batches" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"status" "batch_status" DEFAULT 'queued' NOT NULL,
	"total" integer NOT NULL,
	"processed" integer DEFAULT 0 NOT NULL,
	"failed" integer DEFAULT 0 NOT NULL,
	"site" text,
	"line" text,
	"camera" text,
	"captured_at" timestamp with time zone,
	"idempotency_key" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"enqueued_at" timestamp with time zone,
	"completed_at" timestamp with time zone,
	CONSTRAINT "batches_idempotency_key_unique" UNIQUE("idempotency_key"),
	CONSTRAINT "batches_counters_check" CHECK ("batches"."processed" >= 0 and "batches"."failed" >= 0 and "batches"."failed" <= "batches"."processed" and "batches"."processed" <= "batches"."total")
);
--> statement-breakpoint
CREATE TABLE "class_stats" (
	"bucket" timestamp with time zone NOT NULL,
	"site" text DEFAULT '' NOT NULL,
	"line" text DEFAULT '' NOT NULL,
	"label" text NOT NULL,
	"count" bigint DEFAULT 0 NOT NULL,
	"histogram" integer[] NOT NULL,
	CONSTRAINT "class_stats_pkey" PRIMARY KEY("bucket","site","line","label")
);
--> statement-breakpoint
CREATE TABLE "image_blobs" (
	"key" text PRIMARY KEY NOT NULL,
	"data" "bytea" NOT NULL,
	"bytes" bigint NOT NULL,
	"sha256" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "images" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"batch_id" uuid NOT NULL,
	"index" integer NOT NULL,
	"filename" text,
	"storage_key" text,
	"bytes" bigint NOT NULL,
	"sha256" text,
	"content_type" text,
	"site" text,
	"line" text,
	"captured_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "images_batch_index_unique" UNIQUE("batch_id","index")
);
--> statement-breakpoint
CREATE TABLE "results" (
	"image_id" uuid PRIMARY KEY NOT NULL,
	"batch_id" uuid NOT NULL,
	"status" "result_status" NOT NULL,
	"label" text,
	"confidence" double precision,
	"top" jsonb,
	"model_version" text,
	"inference_ms" double precision,
	"queue_ms" double precision,
	"end_to_end_ms" double precision,
	"error_code" text,
	"error_message" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "results_ok_has_label" CHECK ("results"."status" <> 'ok' or ("results"."label" is not null and "results"."confidence" between 0 and 1))
);
--> statement-breakpoint
ALTER TABLE "images" ADD CONSTRAINT "images_batch_id_batches_id_fk" FOREIGN KEY ("batch_id") REFERENCES "public"."batches"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "results" ADD CONSTRAINT "results_image_id_images_id_fk" FOREIGN KEY ("image_id") REFERENCES "public"."images"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "results" ADD CONSTRAINT "results_batch_id_batches_id_fk" FOREIGN KEY ("batch_id") REFERENCES "public"."batches"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "batches_created_at_idx" ON "batches" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "class_stats_site_line_bucket_idx" ON "class_stats" USING btree ("site","line","bucket");--> statement-breakpoint
CREATE INDEX "results_batch_id_idx" ON "results" USING btree ("batch_id");