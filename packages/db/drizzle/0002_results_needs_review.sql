ALTER TABLE "class_stats" ADD COLUMN "review_count" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "results" ADD COLUMN "needs_review" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "results" ADD COLUMN "review_reasons" text[] DEFAULT '{}' NOT NULL;--> statement-breakpoint
ALTER TABLE "results" ADD COLUMN "novelty" double precision;--> statement-breakpoint
ALTER TABLE "results" ADD CONSTRAINT "results_review_consistent" CHECK ("results"."needs_review" = (cardinality("results"."review_reasons") > 0) and ("results"."status" = 'ok' or not "results"."needs_review"));--> statement-breakpoint
ALTER TABLE "results" ADD CONSTRAINT "results_review_reasons_known" CHECK ("results"."review_reasons" <@ array['low_confidence', 'unfamiliar']::text[]);