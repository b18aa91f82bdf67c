-- Scheduled key rotation (auto_rotate with rotation_interval): when a key is next rotated,
-- when it last was, and how often it has been. Keys flagged before this migration get their
-- first rotation time from the rotation job, which reads their interval.

ALTER TABLE gatehouse_keys ADD COLUMN key_rotation_at DOUBLE PRECISION;
ALTER TABLE gatehouse_keys ADD COLUMN last_rotation_at DOUBLE PRECISION;
ALTER TABLE gatehouse_keys ADD COLUMN rotation_count BIGINT NOT NULL DEFAULT 0;

CREATE INDEX gatehouse_keys_rotation ON gatehouse_keys (key_rotation_at);
