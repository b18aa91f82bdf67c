-- Written once for both back ends: SQLite and Postgres accept every statement as it is.
-- JSON is stored as TEXT, booleans as INTEGER 0/1, times as epoch seconds.

CREATE TABLE gatehouse_keys (
    key_hash TEXT PRIMARY KEY,
    key_name TEXT NOT NULL,
    key_alias TEXT,
    team_id TEXT,
    user_id TEXT,
    models TEXT NOT NULL DEFAULT '[]',
    max_budget DOUBLE PRECISION,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    metadata TEXT NOT NULL DEFAULT '{}',
    permissions TEXT NOT NULL DEFAULT '{}',
    guardrails TEXT NOT NULL DEFAULT '[]',
    rpm_limit BIGINT,
    tpm_limit BIGINT,
    expires DOUBLE PRECISION,
    blocked INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE INDEX gatehouse_keys_team ON gatehouse_keys (team_id);

CREATE TABLE gatehouse_teams (
    team_id TEXT PRIMARY KEY,
    team_alias TEXT,
    models TEXT NOT NULL DEFAULT '[]',
    max_budget DOUBLE PRECISION,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    metadata TEXT NOT NULL DEFAULT '{}',
    members TEXT NOT NULL DEFAULT '[]',
    rpm_limit BIGINT,
    tpm_limit BIGINT,
    blocked INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE gatehouse_blocked_users (
    user_id TEXT PRIMARY KEY,
    blocked_at DOUBLE PRECISION NOT NULL
);

-- id is made once per row when it is queued, so a retried batch is written once whatever
-- request_id holds; request_id is what the spend routes look rows up by.
CREATE TABLE gatehouse_spend_logs (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    call_type TEXT NOT NULL,
    model TEXT NOT NULL,
    key_hash TEXT,
    team_id TEXT,
    user_id TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    metadata TEXT NOT NULL DEFAULT '{}',
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    total_tokens BIGINT NOT NULL DEFAULT 0,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    start_time DOUBLE PRECISION NOT NULL,
    end_time DOUBLE PRECISION NOT NULL,
    request_ip TEXT,
    status INTEGER NOT NULL,
    guardrails TEXT NOT NULL DEFAULT '[]'
);

CREATE INDEX gatehouse_spend_logs_request ON gatehouse_spend_logs (request_id);
CREATE INDEX gatehouse_spend_logs_key ON gatehouse_spend_logs (key_hash);
CREATE INDEX gatehouse_spend_logs_start ON gatehouse_spend_logs (start_time);

CREATE TABLE gatehouse_audit_logs (
    id TEXT PRIMARY KEY,
    updated_at TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    action TEXT NOT NULL,
    table_name TEXT NOT NULL,
    object_id TEXT NOT NULL,
    before_value TEXT,
    updated_values TEXT
);

CREATE INDEX gatehouse_audit_logs_object ON gatehouse_audit_logs (object_id);
