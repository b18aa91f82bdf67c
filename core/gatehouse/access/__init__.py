"""Who may call and what it costs: credentials, principals, the call gate, budgets, prices.
May import guardrails (the call context and its verdicts), store, and config and errors."""
