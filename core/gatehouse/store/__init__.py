"""Durable and shared state: the database (SQLite or Postgres, one schema, migrations/), the
Redis or in-process cache of counters and rows, and audit rows.

May import: nothing from the rest of gatehouse; every other part is built on top of it.
"""
