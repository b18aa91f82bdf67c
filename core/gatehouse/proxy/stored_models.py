"""Models kept in the database (``store_model_in_db``), served beside the config's by every
gateway sharing it.

Off the request path, each gateway reads one version number every ``POLL_INTERVAL``; when it
moved, the stored models are read again and the router's table replaced in one swap. A change
made through this gateway is applied here at once; the others follow within the interval.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..config import ModelParams
from ..store.database import Row, StoreUnavailable
from ..store.sealed import Unsealable

if TYPE_CHECKING:
    from ..access.prices import Prices
    from ..store.models import ModelRows
    from ..store.sealed import Sealer
    from .router import Deployment, Router

log = logging.getLogger("gatehouse.models")

POLL_INTERVAL = 1.0


class StoredModels:
    def __init__(self, rows: ModelRows, router: Router, sealer: Sealer, prices: Prices, *,
                 interval: float = POLL_INTERVAL):
        self.rows = rows
        self.router = router
        self.sealer = sealer
        self.prices = prices
        self.interval = interval
        self.version: int | None = None
        self._poller: asyncio.Task[None] | None = None
        self._reloading = asyncio.Lock()

    async def start(self) -> None:
        await self.reload()
        self._poller = asyncio.create_task(self._poll(), name="gatehouse-stored-models")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)

    async def _poll(self) -> None:
        unreachable = False
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.reload()
            except StoreUnavailable as exc:
                if not unreachable:
                    log.warning("stored models: database unreachable; serving the models "
                                "known (%s)", exc)
                unreachable = True
                continue
            except Exception:  # noqa: BLE001 - keep polling whatever one round does
                log.exception("stored models: reload failed")
                continue
            unreachable = False

    async def reload(self) -> None:
        """Serve the stored models as they are now, if they changed since the last reload."""
        async with self._reloading:
            version = await self.rows.version()
            if version == self.version:
                return
            deployments = [d for row in await self.rows.all()
                           if (d := self._deployment(row)) is not None]
            self.router.replace_stored(deployments)
            for deployment in deployments:
                self.prices.add(deployment.model_name, deployment.params, deployment.model_info)
            self.version = version

    def _deployment(self, row: Row) -> Deployment | None:
        try:
            params = ModelParams.model_validate(self.sealer.open(row["litellm_params"]))
            return self.router.deployment(row["model_name"], params,
                                          {**row["model_info"], "id": row["model_id"]},
                                          db_model=True)
        except (Unsealable, ValidationError, ValueError) as exc:
            # One bad row must not keep every other stored model from being served.
            log.error("stored model %s (%s) is not served: %s", row["model_id"],
                      row["model_name"], exc)
            return None

    # --- changes -------------------------------------------------------------------------------

    async def add(self, model_name: str, params: dict[str, Any], info: dict[str, Any],
                  by: str | None) -> Row:
        model_id = str(info.get("id") or uuid.uuid4())
        row = await self.rows.insert(model_id, model_name, self.sealer.seal(params),
                                     {**info, "id": model_id}, by)
        await self.reload()
        return row

    async def update(self, model_id: str, model_name: str, params: dict[str, Any],
                     info: dict[str, Any], by: str | None) -> Row | None:
        row = await self.rows.update(model_id, model_name, self.sealer.seal(params),
                                     {**info, "id": model_id}, by)
        await self.reload()
        return row

    async def delete(self, model_id: str) -> bool:
        deleted = await self.rows.delete(model_id)
        await self.reload()
        return deleted

    async def opened(self, model_id: str) -> Row | None:
        """A stored row with its params decrypted, to merge an update into."""
        row = await self.rows.get(model_id)
        if row is not None:
            row["litellm_params"] = self.sealer.open(row["litellm_params"])
        return row
