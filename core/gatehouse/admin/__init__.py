"""The management API: keys, teams, blocked customers, spend reports and audit logs.
May import access, proxy, guardrails and store, and config and errors; never the gateway."""
