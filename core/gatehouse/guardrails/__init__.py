"""The guardrail engine: the Guardrail base class and its verdicts, building guardrails from
config, selecting them per call, running their hooks (timeouts, on_error), stream hold-back, and
where text travels in OpenAI bodies.

May import: the top-level ``config``, ``plugins`` and ``errors`` modules; no other subpackage.
"""
