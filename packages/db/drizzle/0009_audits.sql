CREATE TABLE "quality_stats" (
	"bucket" timestamp with time zone NOT NULL,
	"site" text DEFAULT '' NOT NULL,
	"line" text DEFAULT '' NOT NULL,
	"flagged" boolean NOT NULL,
	"audit_rate" double precision NOT NULL,
	"audit" boolean NOT NULL,
	"predicted" text NOT NULL,
	"truth" text DEFAULT '' NOT NULL,
	"count" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "quality_stats_pkey" PRIMARY KEY("bucket","site","line","flagged","audit_rate","audit","predicted","truth")
);
--> statement-breakpoint
ALTER TABLE "results" ADD COLUMN "audit" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "results" ADD COLUMN "awaiting_audit" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "results" ADD COLUMN "audit_rate" double precision DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX "quality_stats_site_line_bucket_idx" ON "quality_stats" USING btree ("site","line","bucket");--> statement-breakpoint
CREATE INDEX "results_awaiting_audit_idx" ON "results" USING btree ("image_id") WHERE "results"."awaiting_audit";--> statement-breakpoint
ALTER TABLE "results" ADD CONSTRAINT "results_awaiting_audit_picked" CHECK (not "results"."awaiting_audit" or ("results"."audit" and "results"."status" = 'ok'));--> statement-breakpoint
-- Backfill: results recorded before audits existed, under their model label and any review's label (rate 0:
-- no audit sample, a stratum of their own).
INSERT INTO "quality_stats" ("bucket", "site", "line", "flagged", "audit_rate", "audit", "predicted", "truth", "count")
SELECT date_trunc('minute', "images"."captured_at"), coalesce("images"."site", ''), coalesce("images"."line", ''),
  "results"."needs_review", 0, false, "results"."label", coalesce("reviews"."label", ''), count(*)
FROM "results" JOIN "images" ON "images"."id" = "results"."image_id"
  LEFT JOIN "reviews" ON "reviews"."image_id" = "results"."image_id"
WHERE "results"."status" = 'ok'
GROUP BY 1, 2, 3, 4, 7, 8;
