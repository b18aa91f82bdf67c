-- Pass-through endpoints added through POST /config/pass_through_endpoint, served by every
-- gateway sharing the database. litellm_params is the endpoint less its path, as JSON whose
-- values are encrypted (store/sealed.py): its headers carry the target's credentials. A path
-- is unique: it is the route the endpoint is served on.
CREATE TABLE gatehouse_pass_through (
    endpoint_id TEXT PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    litellm_params TEXT NOT NULL,
    endpoint_info TEXT NOT NULL DEFAULT '{}',
    created_at DOUBLE PRECISION NOT NULL,
    created_by TEXT,
    updated_at DOUBLE PRECISION NOT NULL,
    updated_by TEXT
);

-- One row, bumped in the same transaction as every change to gatehouse_pass_through: each
-- gateway polls this one value and rebuilds its table of endpoints only when it moved.
CREATE TABLE gatehouse_pass_through_version (
    id INTEGER PRIMARY KEY,
    version BIGINT NOT NULL
);

INSERT INTO gatehouse_pass_through_version (id, version) VALUES (1, 0);
