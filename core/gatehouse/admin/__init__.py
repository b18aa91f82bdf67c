"""The management API routes: keys, teams, blocked customers, spend reports and audit logs.

May import: ``access``, ``proxy``, ``guardrails``, ``store``, and the top-level ``config`` and
``errors`` modules; it gets its services from the ``ADMIN`` app key, never from the gateway.
"""
