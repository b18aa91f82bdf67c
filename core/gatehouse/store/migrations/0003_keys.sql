-- Every field of LiteLLM's /key/generate that changes what a key may do, or that a client
-- reads back. Existing keys keep their values; the new columns start empty.

ALTER TABLE gatehouse_keys ADD COLUMN aliases TEXT NOT NULL DEFAULT '{}';
ALTER TABLE gatehouse_keys ADD COLUMN config TEXT NOT NULL DEFAULT '{}';
ALTER TABLE gatehouse_keys ADD COLUMN budget_duration TEXT;
-- When spend next goes back to 0 (epoch seconds); null: never.
ALTER TABLE gatehouse_keys ADD COLUMN budget_reset_at DOUBLE PRECISION;
ALTER TABLE gatehouse_keys ADD COLUMN budget_id TEXT;
ALTER TABLE gatehouse_keys ADD COLUMN soft_budget DOUBLE PRECISION;
ALTER TABLE gatehouse_keys ADD COLUMN max_parallel_requests BIGINT;
ALTER TABLE gatehouse_keys ADD COLUMN model_max_budget TEXT NOT NULL DEFAULT '{}';
ALTER TABLE gatehouse_keys ADD COLUMN allowed_cache_controls TEXT NOT NULL DEFAULT '[]';
ALTER TABLE gatehouse_keys ADD COLUMN allowed_routes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE gatehouse_keys ADD COLUMN object_permission TEXT;
ALTER TABLE gatehouse_keys ADD COLUMN auto_rotate INTEGER NOT NULL DEFAULT 0;
ALTER TABLE gatehouse_keys ADD COLUMN rotation_interval TEXT;
ALTER TABLE gatehouse_keys ADD COLUMN created_by TEXT;
ALTER TABLE gatehouse_keys ADD COLUMN updated_by TEXT;

-- Aliases are unique across keys; the check is the admin API's (an index would refuse to
-- build on a database that already holds two keys with one alias).
CREATE INDEX gatehouse_keys_alias ON gatehouse_keys (key_alias);
CREATE INDEX gatehouse_keys_user ON gatehouse_keys (user_id);
CREATE INDEX gatehouse_keys_budget_reset ON gatehouse_keys (budget_reset_at);
