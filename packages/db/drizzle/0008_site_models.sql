CREATE TYPE "public"."model_state" AS ENUM('candidate', 'shadow', 'active', 'retired');--> statement-breakpoint
CREATE TABLE "model_assignments" (
	"site" text PRIMARY KEY NOT NULL,
	"version_id" uuid NOT NULL,
	"previous_version_id" uuid,
	"assigned_at" timestamp with time zone DEFAULT now() NOT NULL,
	"assigned_by" text
);
--> statement-breakpoint
CREATE TABLE "model_versions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"version" text NOT NULL,
	"sha256" text NOT NULL,
	"state" "model_state" DEFAULT 'candidate' NOT NULL,
	"sites" text[],
	"manifest" jsonb NOT NULL,
	"int8_manifest" jsonb,
	"files" jsonb NOT NULL,
	"trained_on" jsonb,
	"data_until" timestamp with time zone,
	"metrics" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_by" text,
	CONSTRAINT "model_versions_name_version_unique" UNIQUE("name","version"),
	CONSTRAINT "model_versions_sites_check" CHECK ("model_versions"."sites" is null or cardinality("model_versions"."sites") > 0)
);
--> statement-breakpoint
CREATE TABLE "shadow_results" (
	"image_id" uuid NOT NULL,
	"version_id" uuid NOT NULL,
	"source" text NOT NULL,
	"label" text NOT NULL,
	"confidence" double precision NOT NULL,
	"top" jsonb NOT NULL,
	"needs_review" boolean DEFAULT false NOT NULL,
	"review_reasons" text[] DEFAULT '{}' NOT NULL,
	"novelty" double precision,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "shadow_results_image_id_version_id_pk" PRIMARY KEY("image_id","version_id"),
	CONSTRAINT "shadow_results_source_check" CHECK ("shadow_results"."source" in ('live', 'reviewed'))
);
--> statement-breakpoint
CREATE TABLE "site_review_thresholds" (
	"site" text NOT NULL,
	"model_version" text NOT NULL,
	"min_confidence" double precision NOT NULL,
	"max_distance" double precision,
	"reviewed" integer NOT NULL,
	"coverage" double precision NOT NULL,
	"unflagged_accuracy" double precision NOT NULL,
	"target" double precision NOT NULL,
	"computed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "site_review_thresholds_site_model_version_pk" PRIMARY KEY("site","model_version")
);
--> statement-breakpoint
ALTER TABLE "model_assignments" ADD CONSTRAINT "model_assignments_version_id_model_versions_id_fk" FOREIGN KEY ("version_id") REFERENCES "public"."model_versions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "model_assignments" ADD CONSTRAINT "model_assignments_previous_version_id_model_versions_id_fk" FOREIGN KEY ("previous_version_id") REFERENCES "public"."model_versions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "shadow_results" ADD CONSTRAINT "shadow_results_image_id_images_id_fk" FOREIGN KEY ("image_id") REFERENCES "public"."images"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "shadow_results" ADD CONSTRAINT "shadow_results_version_id_model_versions_id_fk" FOREIGN KEY ("version_id") REFERENCES "public"."model_versions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "shadow_results_version_id_idx" ON "shadow_results" USING btree ("version_id");