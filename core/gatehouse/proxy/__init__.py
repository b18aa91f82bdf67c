"""One call's path: the pipeline (read ``pipeline.py`` top to bottom), body schemas, the model
router and its providers, the call log, and the OpenAI-compatible routes.

May import: ``guardrails``, ``access``, ``store``, and the top-level ``config``, ``plugins`` and
``errors`` modules.
"""
