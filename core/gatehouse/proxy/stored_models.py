"""Models kept in the database (``store_model_in_db``), served beside the config's by every
gateway sharing it.

Off the request path, each gateway reads one version number every ``POLL_INTERVAL``; when it
moved, the stored models are read again and the router's table replaced in one swap. A change
made through this gateway is applied here at once; the others follow within the interval.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..config.model_list import ModelParams
from ..store.models import POLL_INTERVAL, Reloader
from ..store.schema import Row
from ..store.sealed import Sealer, Unsealable

if TYPE_CHECKING:
    from ..access.prices import Prices
    from ..store.models import ModelRows
    from .router import Deployment, Router

log = logging.getLogger("gatehouse.models")


class StoredModels(Reloader):
    what = "stored models"

    def __init__(self, rows: ModelRows, router: Router, sealer: Sealer, prices: Prices, *,
                 interval: float = POLL_INTERVAL):
        super().__init__(rows, sealer, interval)
        self.router = router
        self.prices = prices

    async def apply(self, rows: list[Row]) -> None:
        deployments = [d for row in rows if (d := self._deployment(row)) is not None]
        self.router.replace_stored(deployments)
        for deployment in deployments:
            self.prices.add(deployment.model_name, deployment.params, deployment.model_info)

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
        return await self.insert(model_id, model_name, params, {**info, "id": model_id}, by)

    async def update(self, model_id: str, model_name: str, params: dict[str, Any],
                     info: dict[str, Any], by: str | None) -> Row | None:
        return await self.replace(model_id, model_name, params, {**info, "id": model_id}, by)
