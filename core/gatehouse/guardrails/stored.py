"""Guardrails kept in the database (``POST /guardrails``), served beside the config's by every
gateway sharing it.

Off the request path, each gateway polls one version number (``store.models.Reloader``); when
it moved, the stored guardrails are built and started again and the served set -- with the
selection plans cached for it -- is replaced in one swap. Calls already under way finish with
the guardrails they selected; a replaced guardrail is stopped once they have had time to end.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Any

from ..config import ConfigError
from ..plugins import PluginError
from ..store.models import POLL_INTERVAL, Reloader
from ..store.sealed import Unsealable
from .registry import GuardrailSet, add_stored, shadow_problem

if TYPE_CHECKING:
    from ..config import Config
    from ..plugins import Plugins
    from ..store.models import GuardrailRows
    from ..store.schema import Row
    from ..store.sealed import Sealer
    from .base import Guardrail, Models
    from .registry import LiveGuardrails

log = logging.getLogger("gatehouse.guardrails")

# Seconds a replaced guardrail keeps its HTTP session, for the calls that selected it.
RETIRE_AFTER = 120.0


class StoredGuardrails(Reloader):
    what = "stored guardrails"

    def __init__(self, rows: GuardrailRows, live: LiveGuardrails, config_set: GuardrailSet,
                 config: Config, plugins: Plugins, sealer: Sealer, *,
                 interval: float = POLL_INTERVAL):
        super().__init__(rows, sealer, interval)
        self.live = live
        self.config_set = config_set
        self.config = config
        self.plugins = plugins
        self.models: Models | None = None
        self._retiring: set[asyncio.Task[None]] = set()

    async def start_with(self, models: Models) -> None:
        """Serve the stored guardrails, once the config's have started (they share
        ``models``), then follow changes."""
        self.models = models
        await self.start()

    async def stop(self) -> None:
        await super().stop()
        for task in self._retiring:
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        for guardrail in self._own(self.live.current):
            await self._stop_one(guardrail)

    async def apply(self, rows: list[Row]) -> None:
        entries = []
        for row in rows:
            try:
                entries.append((row, self.sealer.open(row["litellm_params"])))
            except Unsealable as exc:
                self._refused(row["guardrail_name"], exc)
        built = self.config_set.with_stored(self.config, self.plugins, entries, self._refused)
        for guardrail in list(self._own(built)):
            try:
                assert self.models is not None
                await guardrail.start(self.models)
            except Exception as exc:  # noqa: BLE001 - one bad guardrail must not stop the rest
                self._refused(guardrail.name, exc)
                self._unregister(guardrail)
                built = built.without(guardrail.name)
        old = self.live.current
        self.live.current = built
        for guardrail in self._own(old):
            self._retire(guardrail)

    def _own(self, built: GuardrailSet) -> list[Guardrail]:
        return [built.by_name[name] for name in built.stored]

    @staticmethod
    def _refused(name: str, exc: Exception) -> None:
        log.error("stored guardrail %r is not served: %s", name, exc)

    def _retire(self, guardrail: Guardrail) -> None:
        self._unregister(guardrail)
        task = asyncio.create_task(self._stop_later(guardrail))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    def _unregister(self, guardrail: Guardrail) -> None:
        if self.plugins.pm.is_registered(guardrail):
            self.plugins.pm.unregister(guardrail)

    async def _stop_later(self, guardrail: Guardrail) -> None:
        try:
            await asyncio.sleep(RETIRE_AFTER)
        finally:
            await self._stop_one(guardrail)

    @staticmethod
    async def _stop_one(guardrail: Guardrail) -> None:
        try:
            await guardrail.stop()
        except Exception:  # noqa: BLE001 - keep stopping the rest
            log.exception("guardrail %r failed to stop", guardrail.name)

    # --- changes -------------------------------------------------------------------------------

    def check(self, name: str, params: dict[str, Any], replacing: str | None = None) -> None:
        """Refuse (ConfigError) a guardrail that could not be served: a name already taken,
        an unknown type, params its type refuses, a mode it does not support."""
        if name in self.live and name != replacing:
            raise ConfigError(f"guardrail_name: a guardrail named {name!r} already exists")
        scratch = GuardrailSet()
        try:
            add_stored(scratch, self.config, self.plugins, name, params, None)
        except (ConfigError, PluginError):
            raise
        except Exception as exc:  # noqa: BLE001 - a type's own __init__ may raise anything
            raise ConfigError(f"litellm_params: the guardrail type refused these params "
                              f"({type(exc).__name__}: {exc})") from None
        self._unregister(scratch.by_name[name])
        problem = shadow_problem({**self.live.current.by_name, **scratch.by_name}, name)
        if problem is not None:
            raise ConfigError(f"litellm_params.shadow_of: {problem}")

    async def add(self, name: str, params: dict[str, Any], info: dict[str, Any],
                  by: str | None) -> Row:
        return await self.insert(str(uuid.uuid4()), name, params, info, by)
