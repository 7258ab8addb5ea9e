DROP INDEX "results_needs_review_idx";--> statement-breakpoint
ALTER TABLE "results" ADD COLUMN "awaiting_review" boolean DEFAULT false NOT NULL;--> statement-breakpoint
-- Backfill: what the review queue showed before (flagged, no review yet) is what waits now.
UPDATE "results" SET "awaiting_review" = true WHERE "needs_review" AND NOT EXISTS (SELECT 1 FROM "reviews" WHERE "reviews"."image_id" = "results"."image_id");--> statement-breakpoint
CREATE INDEX "results_awaiting_review_idx" ON "results" USING btree ("image_id") WHERE "results"."awaiting_review";--> statement-breakpoint
ALTER TABLE "results" ADD CONSTRAINT "results_awaiting_review_flagged" CHECK (not "results"."awaiting_review" or "results"."needs_review");