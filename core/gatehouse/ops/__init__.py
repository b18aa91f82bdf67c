"""What operators look at: health probes, the installed plugins, the configured guardrails.
May import proxy, guardrails, and the top-level plugins and errors modules."""
