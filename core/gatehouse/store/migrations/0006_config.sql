-- Settings changed through the management API rather than config.yaml (the public model
-- groups and the model hub's links), shared by every gateway on the database. value is JSON.
CREATE TABLE gatehouse_config (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    updated_by TEXT
);
