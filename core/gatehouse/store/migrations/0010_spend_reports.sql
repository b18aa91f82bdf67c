-- The spend reports read these columns of the rows in a date range: an index holding them all,
-- in start_time order, answers every report from the index alone, without the table's rows
-- (which also carry metadata and guardrail records, most of their width).
CREATE INDEX gatehouse_spend_logs_report ON gatehouse_spend_logs
    (start_time, team_id, end_user, key_hash, model, spend, prompt_tokens, completion_tokens,
     total_tokens);

-- GET /audit sorts and filters by time, and retention deletes the oldest rows first.
CREATE INDEX gatehouse_audit_logs_updated ON gatehouse_audit_logs (updated_at);
CREATE INDEX gatehouse_audit_logs_table ON gatehouse_audit_logs (table_name, updated_at);

-- Leases: a job only one gateway should run at a time (log retention) is run by the gateway
-- holding its row until expires_at (epoch seconds).
CREATE TABLE gatehouse_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);

-- The report index starts with start_time, so it serves every lookup this one did.
DROP INDEX gatehouse_spend_logs_start;

-- The hash of the key that made a change (null for the master key and the gateway's own jobs).
ALTER TABLE gatehouse_audit_logs ADD COLUMN changed_by_api_key TEXT;
