"""Pass-through endpoints kept in the database (``POST /config/pass_through_endpoint``),
served beside the config's by every gateway sharing it.

Off the request path, each gateway polls one version number (``store.models.Reloader``); when
it moved, the stored endpoints are built again -- their headers' ``os.environ/`` variables
read from this gateway's environment -- and the table of endpoints replaced in one swap.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ..config import ConfigError
from ..config.general_settings import PassThroughEndpoint
from ..store.models import POLL_INTERVAL, Reloader
from ..store.sealed import Unsealable
from .passthrough import Endpoint, build

if TYPE_CHECKING:
    from ..store.models import PassThroughRows
    from ..store.schema import Row
    from ..store.sealed import Sealer
    from .passthrough import PassThrough

log = logging.getLogger("gatehouse.passthrough")


class StoredPassThrough(Reloader):
    what = "stored pass-through endpoints"

    def __init__(self, rows: PassThroughRows, served: PassThrough, sealer: Sealer, *,
                 interval: float = POLL_INTERVAL):
        super().__init__(rows, sealer, interval)
        self.served = served

    async def apply(self, rows: list[Row]) -> None:
        self.served.serve([e for row in rows if (e := self._endpoint(row)) is not None])

    def entry(self, row: Row) -> PassThroughEndpoint:
        """A stored row as the endpoint it was stored from (Unsealable, ValidationError)."""
        return PassThroughEndpoint.model_validate(
            {**self.sealer.open(row["litellm_params"]), "path": row["path"]})

    def _endpoint(self, row: Row) -> Endpoint | None:
        where = f"stored pass-through endpoint {row['path']}"
        try:
            entry = self.entry(row)
            endpoint = build(entry, where, row["endpoint_id"])
        except (Unsealable, ValidationError, ConfigError) as exc:
            # One bad row must not keep every other stored endpoint from being served.
            log.error("%s is not served: %s", where, exc)
            return None
        # Checked when stored; checked again, as the gateway's routes may have changed since.
        problems = self.served.problems(entry, where)
        if problems:
            log.error("%s is not served: %s", where, "; ".join(problems))
            return None
        return endpoint

    async def add(self, entry: PassThroughEndpoint, by: str | None) -> Row:
        params = entry.model_dump(exclude={"path", "id"})
        return await self.insert(str(uuid.uuid4()), entry.path, params, {}, by)
