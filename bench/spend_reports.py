"""How long each spend report takes over a million spend rows, as a multiple of a plain
COUNT over the same table timed in the same run -- before and after migration 0010's index.

The rows are made by the database itself (one INSERT ... SELECT over a recursive count): 50
teams, 500 keys, 200 customers, 5 models, a quarter of the rows tagged, about 1 kB of metadata
and guardrail records each, spread evenly over the 30 days before now. Each report is timed over the whole 30 days and over one day, through the
store's own queries. "Before" is the schema as migration 0009 left it (the index on start_time
alone); "after" is 0010's covering report index.

SQLite (a file in a temporary folder) by default; ``--postgres URL`` (a server; the bench makes
and then drops a database of its own on it) for Postgres.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from benchkit import BenchError, Table, arguments, count, run_async  # noqa: E402

from gatehouse.store.database import Store  # noqa: E402

DAY = 86400
BEFORE = ["DROP INDEX gatehouse_spend_logs_report",
          "CREATE INDEX gatehouse_spend_logs_start ON gatehouse_spend_logs (start_time)"]
AFTER = ["DROP INDEX gatehouse_spend_logs_start",
         "CREATE INDEX gatehouse_spend_logs_report ON gatehouse_spend_logs (start_time, "
         "team_id, end_user, key_hash, model, spend, prompt_tokens, completion_tokens, "
         "total_tokens)"]


# What a logged call carries besides its figures -- the key, team and user it ran as, the
# client's spend_logs_metadata, its guardrails' records -- about 1 kB a row, as in real logs:
# the width the report index lets the reports skip.
METADATA = ('{"user_api_key":"' + "0" * 64 + '","user_api_key_alias":"growth-app",'
            '"user_api_key_team_id":"team-1","user_api_key_user_id":"user-1",'
            '"spend_logs_metadata":{"app":"' + "x" * 300 + '"}}')
GUARDRAILS = ('[{"guardrail_name":"checker","guardrail_mode":"pre_call","guardrail_status":'
              '"success","guardrail_response":"' + "y" * 300 + '"}]')


def seed_sql(rows: int, start: float) -> tuple[str, tuple[Any, ...]]:
    step = 30 * DAY / rows
    return (
        "INSERT INTO gatehouse_spend_logs (id, request_id, call_type, model, key_hash, team_id, "
        "user_id, end_user, tags, metadata, prompt_tokens, completion_tokens, total_tokens, "
        "spend, start_time, end_time, status, guardrails) "
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "SELECT 'r' || CAST(i AS TEXT), 'q' || CAST(i AS TEXT), 'chat_completion', "
        "'model-' || CAST(i % 5 AS TEXT), 'key-' || CAST(i % 500 AS TEXT), "
        "'team-' || CAST(i % 50 AS TEXT), 'user-' || CAST(i % 100 AS TEXT), "
        "'cust-' || CAST(i % 200 AS TEXT), "
        "CASE i % 8 WHEN 0 THEN '[\"app-prod\"]' WHEN 1 THEN '[\"batch\",\"app-prod\"]' "
        "ELSE '[]' END, ?, i % 100, i % 300, i % 100 + i % 300, (i % 100) * 0.0001, "
        "? + i * ?, ? + i * ?, 200, ? FROM n",
        (rows, METADATA, start, step, start, step, GUARDRAILS))


async def execute(store: Store, *statements: str) -> None:
    async with store.transaction() as tx:
        for statement in statements:
            await tx.execute(statement)


async def best_seconds(work: Callable[[], Awaitable[object]], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        await work()
        best = min(best, time.perf_counter() - began)
    return best


def reports(store: Store, now: float) -> dict[str, Callable[[], Awaitable[object]]]:
    month, day = (now - 30 * DAY, now), (now - 15 * DAY, now - 14 * DAY)
    works: dict[str, Callable[[], Awaitable[object]]] = {}
    for label, (start, end) in (("30 days", month), ("1 day", day)):
        works[f"report by team, {label}"] = lambda s=start, e=end: store.spend_by_day(
            "team_id", s, e)
        works[f"report by customer, {label}"] = lambda s=start, e=end: store.spend_by_day(
            "end_user", s, e)
        works[f"report by key, {label}"] = lambda s=start, e=end: store.spend_by_key_model(
            s, e, {})
        works[f"report for one key, {label}"] = lambda s=start, e=end: store.spend_by_key_model(
            s, e, {"key_hash": "key-7"})
        works[f"tags, {label}"] = lambda s=start, e=end: store.spend_by_tag(s, e)
    works["top keys, 30 days"] = lambda: store.top_keys(month[0], 100)
    works["teams by day, 30 days"] = lambda: store.team_spend_by_day(month[0])
    return works


async def measure(store: Store, rows: int, repeats: int,
                  settle: Callable[[], Awaitable[None]] | None = None) -> None:
    now = time.time()
    print(f"{store.description}: seeding {rows:,} spend rows ...", flush=True)
    began = time.perf_counter()
    async with store.transaction() as tx:
        await tx.execute(*seed_sql(rows, now - 30 * DAY))
    print(f"  seeded in {time.perf_counter() - began:.1f} s", flush=True)

    async def count_all() -> object:
        # COUNT of a column no index holds: a scan of the table itself in either state, where
        # COUNT(*) would read whichever index is smallest and so move with the indexes.
        async with store.transaction() as tx:
            return await tx.fetchall("SELECT COUNT(status) AS n FROM gatehouse_spend_logs")

    figures: dict[str, dict[str, float]] = {}
    for state, statements in (("before", BEFORE), ("after", AFTER)):
        await execute(store, *statements, "ANALYZE")
        if settle is not None:
            await settle()
        baseline = await best_seconds(count_all, repeats)
        figures[state] = {name: await best_seconds(work, repeats) / baseline
                          for name, work in reports(store, now).items()}
    table = Table("<32", " >14", " >14", " >10")
    table.row("report (x COUNT)", "before 0010", "after 0010", "speed-up")
    for name in figures["before"]:
        before, after = figures["before"][name], figures["after"][name]
        table.row(name, f"{before:.2f}", f"{after:.2f}", f"{before / after:.1f}x")


async def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--rows", type=count, default=1_000_000,
                        help="spend rows to seed (default 1,000,000)")
    parser.add_argument("--repeats", type=count, default=3,
                        help="runs per figure; the best counts (default 3)")
    parser.add_argument("--postgres", metavar="URL",
                        help="a Postgres server, e.g. postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    if args.postgres:
        await on_postgres(args.postgres.rstrip("/"), args.rows, args.repeats)
        return
    from gatehouse.store.sqlite import SqliteStore
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(str(Path(folder) / "bench.db"))
        await store.open()
        try:
            await measure(store, args.rows, args.repeats)
        finally:
            await store.close()


async def on_postgres(server: str, rows: int, repeats: int) -> None:
    import psycopg

    from gatehouse.store.postgres import PostgresStore
    name = f"gatehouse_bench_{uuid.uuid4().hex[:8]}"
    try:
        admin = await psycopg.AsyncConnection.connect(f"{server}/postgres", autocommit=True)
    except psycopg.OperationalError as exc:
        raise BenchError(f"cannot reach {server}: {exc}") from None
    async with admin:
        await admin.execute(f"CREATE DATABASE {name}")
        try:
            store = PostgresStore(f"{server}/{name}", timeout=600)
            await store.open()

            async def vacuum() -> None:
                # What autovacuum does to a live table, and the bench's bulk insert has not had
                # yet: without it no scan can stay inside an index.
                async with await psycopg.AsyncConnection.connect(
                        f"{server}/{name}", autocommit=True) as conn:
                    await conn.execute("VACUUM ANALYZE gatehouse_spend_logs")

            try:
                await measure(store, rows, repeats, vacuum)
            finally:
                await store.close()
        finally:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    try:
        run_async(main())
    except BenchError as exc:
        sys.exit(f"spend_reports: {exc}")
    except KeyboardInterrupt:
        sys.exit(130)
