-- The id of the upstream's reply (chatcmpl-...): the id a client holds, so a spend row can be
-- found by it as well as by the gateway's own request id.
ALTER TABLE gatehouse_spend_logs ADD COLUMN response_id TEXT;

CREATE INDEX gatehouse_spend_logs_response ON gatehouse_spend_logs (response_id);
