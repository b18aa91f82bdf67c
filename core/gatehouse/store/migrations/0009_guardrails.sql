-- Guardrails added through POST /guardrails, served by every gateway sharing the database.
-- litellm_params is JSON whose values are encrypted (store/sealed.py); guardrail_info is JSON
-- as given. A name is unique: requests and keys select guardrails by name.
CREATE TABLE gatehouse_guardrails (
    guardrail_id TEXT PRIMARY KEY,
    guardrail_name TEXT NOT NULL UNIQUE,
    litellm_params TEXT NOT NULL,
    guardrail_info TEXT NOT NULL DEFAULT '{}',
    created_at DOUBLE PRECISION NOT NULL,
    created_by TEXT,
    updated_at DOUBLE PRECISION NOT NULL,
    updated_by TEXT
);

-- One row, bumped in the same transaction as every change to gatehouse_guardrails: each
-- gateway polls this one value and rebuilds its guardrails only when it moved.
CREATE TABLE gatehouse_guardrails_version (
    id INTEGER PRIMARY KEY,
    version BIGINT NOT NULL
);

INSERT INTO gatehouse_guardrails_version (id, version) VALUES (1, 0);
