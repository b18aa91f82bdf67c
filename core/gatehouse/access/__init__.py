"""Who may call and what it costs: credentials, principals, the request gate, budgets, rate
limits, prices and spend rows.

May import: ``guardrails`` (the call context and its verdicts), ``store``, and the top-level
``config`` and ``errors`` modules.
"""
