"""The guardrail engine: Guardrail and its verdicts, registry, selection, dispatch, streams, text.
May import the top-level config, plugins and errors modules only; no other part."""
