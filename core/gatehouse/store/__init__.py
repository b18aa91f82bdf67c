"""Durable and shared state: SQLite/Postgres with migrations, the Redis/in-process cache, audit.
May import nothing from the rest of gatehouse; every other part is built on top of it."""
