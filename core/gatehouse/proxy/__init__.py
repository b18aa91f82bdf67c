"""One call's path: the pipeline, body schemas, the model router, providers, the call log, routes.
May import guardrails, access and store, and the top-level config, plugins and errors."""
