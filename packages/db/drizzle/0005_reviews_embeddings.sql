CREATE TABLE "result_embeddings" (
	"image_id" uuid PRIMARY KEY NOT NULL,
	"dims" integer NOT NULL,
	"data" "bytea" NOT NULL
);
--> statement-breakpoint
CREATE TABLE "reviews" (
	"image_id" uuid PRIMARY KEY NOT NULL,
	"label" text NOT NULL,
	"model_label" text NOT NULL,
	"changed" boolean NOT NULL,
	"reviewer" text NOT NULL,
	"reviewer_name" text,
	"reviewed_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "class_stats" ADD COLUMN "reviewed_count" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "class_stats" ADD COLUMN "changed_count" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "result_embeddings" ADD CONSTRAINT "result_embeddings_image_id_results_image_id_fk" FOREIGN KEY ("image_id") REFERENCES "public"."results"("image_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "reviews" ADD CONSTRAINT "reviews_image_id_images_id_fk" FOREIGN KEY ("image_id") REFERENCES "public"."images"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "batches_site_created_at_idx" ON "batches" USING btree ("site","created_at");--> statement-breakpoint
CREATE INDEX "results_needs_review_idx" ON "results" USING btree ("image_id") WHERE "results"."needs_review";