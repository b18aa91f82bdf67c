import contextlib
import os
import sys
import textwrap
import uuid
from typing import Iterator, NoReturn

import pytest

import doubles


@pytest.fixture(autouse=True)
def _clean_doubles():
    doubles.EVENTS.clear()
    doubles.RECORDS.clear()
    doubles.NEW_TEXTS.clear()
    yield


@pytest.fixture
def chat():
    """A chat body for the fake upstream's model."""

    def make(content: str = "hello", **extra):
        return {"model": "gpt-4o", "messages": [{"role": "user", "content": content}], **extra}

    return make


@pytest.fixture
def site(tmp_path, monkeypatch):
    """Install fake distributions: ``site(dist, module, source, version)``."""
    monkeypatch.syspath_prepend(str(tmp_path))
    added = []

    def install(dist, module, source, version="1.0"):
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        info = tmp_path / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[gatehouse]\n{module} = {module}\n")
        added.append(module)

    yield install
    for module in added:
        sys.modules.pop(module, None)


# --- real Postgres and Redis --------------------------------------------------------------------
# Each test gets its own database and its own Redis namespace, so tests and gateways never see
# each other's state. Where a server is unreachable its tests skip with the reason -- except in
# CI (CI=true), where a missing server is a failure, not a reason to pass.

# The server, without a database: the fixture works through its ``test`` database.
POSTGRES_SERVER = os.environ.get("GATEHOUSE_TEST_POSTGRES",
                                 "postgresql://postgres@127.0.0.1:5432").rstrip("/")
REDIS_TEST_URL = os.environ.get("GATEHOUSE_TEST_REDIS", "redis://127.0.0.1:6379/0")
_unreachable: dict[str, str] = {}  # server -> why, so a dead server costs one timeout


def _server_missing(server: str, reason: str) -> NoReturn:
    reason = " ".join(reason.split())  # drivers' messages run over several lines
    _unreachable[server] = reason
    if os.environ.get("CI") == "true":
        pytest.fail(f"{server} is required in CI: {reason}")
    pytest.skip(f"{server} unreachable: {reason}")


@contextlib.contextmanager
def _postgres_database() -> Iterator[str]:
    if "postgres" in _unreachable:
        _server_missing("postgres", _unreachable["postgres"])
    try:
        import psycopg
        admin = psycopg.connect(f"{POSTGRES_SERVER}/test", autocommit=True, connect_timeout=2)
    except Exception as exc:  # noqa: BLE001 - ImportError or any connection failure
        _server_missing("postgres", f"{type(exc).__name__}: {exc}")
    name = f"gatehouse_t_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield f"{POSTGRES_SERVER}/{name}"
        finally:
            # FORCE: a gateway the test killed may still hold a connection.
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def _redis_server(namespace: str) -> Iterator[str]:
    if "redis" in _unreachable:
        _server_missing("redis", _unreachable["redis"])
    try:
        import redis
        client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - ImportError or any connection failure
        _server_missing("redis", f"{type(exc).__name__}: {exc}")
    with client:
        try:
            yield REDIS_TEST_URL
        finally:
            keys = list(client.scan_iter(f"{namespace}:*"))
            if keys:
                client.delete(*keys)


@pytest.fixture
def postgres_url():
    """URL of a new, empty Postgres database, dropped after the test."""
    with _postgres_database() as url:
        yield url


@pytest.fixture
def redis_namespace():
    return f"gatehouse-t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_url(redis_namespace):
    """URL of the test Redis; the test's keys live under ``redis_namespace`` and are deleted
    after it."""
    with _redis_server(redis_namespace) as url:
        yield url


# The same per module, for servers slow to start (gateway processes) that a module's tests
# share.

@pytest.fixture(scope="module")
def module_postgres_url():
    with _postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def module_redis_namespace():
    return f"gatehouse-t-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def module_redis_url(module_redis_namespace):
    with _redis_server(module_redis_namespace) as url:
        yield url


@pytest.fixture
def database(request):
    """Admin tests' database: SQLite unless parametrized with "postgres" (both_databases) or
    "postgres+redis" (both_backends), which also keeps the gateway's shared state in Redis."""
    param = getattr(request, "param", "sqlite")
    if param == "sqlite":
        return {}
    settings = {"database_url": request.getfixturevalue("postgres_url")}
    if param == "postgres+redis":
        settings.update(redis_url=request.getfixturevalue("redis_url"),
                        redis_namespace=request.getfixturevalue("redis_namespace"))
    return settings


@pytest.fixture
def start(database, gateway):
    """A gateway with the admin kit's master key on the chosen database."""
    from admin_kit import MASTER

    # The database first, so it is dropped only after the gateway using it has stopped.
    async def start(config=None, **kwargs):
        config = dict(config or {})
        config["general_settings"] = {"master_key": MASTER, **database,
                                      **config.get("general_settings", {})}
        return await gateway(config, **kwargs)
    return start


# --- a real browser ----------------------------------------------------------------------------
# Debian's chromium, driven by Playwright: never a browser Playwright downloads, which offline
# machines cannot fetch. .ci/run installs the package where it is missing.
CHROMIUM = os.environ.get("GATEHOUSE_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture
async def browser():
    """A headless Chromium (Playwright's async API, so pages can load from servers on the
    test's own event loop); ``await browser.new_page(viewport=...)`` for a page."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (see .ci/run)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        # As root (CI), Chromium refuses to start with its sandbox.
        launched = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                    args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def two_gateways(postgres_url, redis_url, redis_namespace, gateway, fake_upstream):
    """Two gateways with the admin kit's master key sharing one Postgres and one Redis."""
    from admin_kit import MASTER, PRICED

    # The database and Redis first: they are dropped only after the gateways have stopped.
    config = {"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)],
              "general_settings": {"master_key": MASTER, "database_url": postgres_url,
                                   "redis_url": redis_url, "redis_namespace": redis_namespace}}
    return await gateway(config), await gateway(config)


# --- the admin UI in that browser ----------------------------------------------------------------
@pytest.fixture
async def provider(aiohttp_server):
    """The OIDC provider of oidc_kit, served."""
    from oidc_kit import Provider

    made = Provider()
    server = await aiohttp_server(made.app())
    made.base = str(server.make_url("")).rstrip("/")
    return made


@pytest.fixture
async def jwt_provider(aiohttp_server, monkeypatch):
    """The JWT identity provider of jwt_kit, with an RSA key, its JWKS served; the gateway's
    JWT_PUBLIC_KEY_URL and JWT_AUDIENCE name it."""
    from aiohttp import web
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt_kit import AUDIENCE, Provider

    made = Provider()
    made.add("rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")
    app = web.Application()
    app.router.add_get("/jwks", made.jwks)
    server = await aiohttp_server(app)
    monkeypatch.setenv("JWT_PUBLIC_KEY_URL", str(server.make_url("/jwks")))
    monkeypatch.setenv("JWT_AUDIENCE", AUDIENCE)
    return made


@pytest.fixture
def sso_env(monkeypatch, provider):
    """The gateway's generic-OIDC settings for ``provider``, before the gateway starts."""
    from oidc_kit import CLIENT_ID, CLIENT_SECRET

    monkeypatch.setenv("GENERIC_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("GENERIC_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("GENERIC_DISCOVERY_URL",
                       f"{provider.base}/.well-known/openid-configuration")
    return monkeypatch


@pytest.fixture
async def ui(start, browser, provider, sso_env, tmp_path):
    """Factory: ``await ui(config=None)`` starts a gateway (master key, SSO through the test's
    provider, password login) and returns a :class:`ui_kit.Ui`. A script error on any page
    fails the test."""
    from playwright.async_api import expect
    from ui_kit import Ui

    # expect() waits 5 s by default, actions 30 s: on a loaded machine a page's API round
    # trip can outlast the first, and the test would fail on how busy the machine was.
    expect.set_options(timeout=30_000)
    made = []

    async def make(config=None, **kwargs):
        made.append(Ui(await start(config, **kwargs), browser, provider, tmp_path))
        return made[-1]

    yield make
    for one in made:
        assert not one.errors, one.errors


# --- a store on either back end, without a gateway ----------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    return request.param


@pytest.fixture
async def make_store(request, backend, tmp_path):
    """``await make_store()`` opens a store on this test's database; a second call is a
    second gateway on the same database. All are closed after the test."""
    from gatehouse.store.postgres import PostgresStore
    from gatehouse.store.sqlite import SqliteStore

    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    opened = []

    async def make():
        store = PostgresStore(url) if url else SqliteStore(str(tmp_path / "gatehouse.db"))
        opened.append(store)
        await store.open()
        return store

    yield make
    for store in opened:
        await store.close()
