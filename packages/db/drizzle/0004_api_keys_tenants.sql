CREATE TABLE "api_keys" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"key_hash" text NOT NULL,
	"sites" text[],
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "api_keys_key_hash_unique" UNIQUE("key_hash"),
	CONSTRAINT "api_keys_sites_check" CHECK ("api_keys"."sites" is null or cardinality("api_keys"."sites") > 0)
);
--> statement-breakpoint
ALTER TABLE "batches" DROP CONSTRAINT "batches_idempotency_key_unique";--> statement-breakpoint
ALTER TABLE "batches" ADD COLUMN "principal" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "batches" ADD CONSTRAINT "batches_principal_idempotency_key_unique" UNIQUE("principal","idempotency_key");