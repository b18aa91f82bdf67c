"""What operators look at: liveness and readiness probes, the installed plugins and the
configured guardrails.

May import: ``proxy``, ``guardrails``, and the top-level ``plugins`` and ``errors`` modules.
"""
