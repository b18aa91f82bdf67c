-- With general_settings.store_prompts_in_spend_logs, a call's request body (as the upstream got
-- it) and its reply, both as the logging_only guardrails masked them, as JSON; null otherwise.
-- LiteLLM's names. `gatehouse replay` runs candidate guardrails over them.
ALTER TABLE gatehouse_spend_logs ADD COLUMN proxy_server_request TEXT;
ALTER TABLE gatehouse_spend_logs ADD COLUMN response TEXT;
