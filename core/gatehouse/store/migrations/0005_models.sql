-- Models added through /model/new (general_settings.store_model_in_db), served by every gateway
-- sharing the database. litellm_params is JSON whose text values are encrypted
-- (store/sealed.py); model_info is JSON as given.
CREATE TABLE gatehouse_models (
    model_id TEXT PRIMARY KEY,
    model_name TEXT NOT NULL,
    litellm_params TEXT NOT NULL,
    model_info TEXT NOT NULL DEFAULT '{}',
    created_at DOUBLE PRECISION NOT NULL,
    created_by TEXT,
    updated_at DOUBLE PRECISION NOT NULL,
    updated_by TEXT
);

-- One row, bumped in the same transaction as every change to gatehouse_models: each gateway
-- polls this one value and reloads the models only when it moved.
CREATE TABLE gatehouse_models_version (
    id INTEGER PRIMARY KEY,
    version BIGINT NOT NULL
);

INSERT INTO gatehouse_models_version (id, version) VALUES (1, 0);
