"""When Aporia cannot give a verdict: the core's outage contract."""

from __future__ import annotations

import gatehouse_aporia
from gatehouse.testing import FakeVendor, OutageContract


class TestAporiaOutage(OutageContract):
    plugin = gatehouse_aporia
    guardrail_type = "aporia"
    modes = ("pre_call", "during_call", "post_call")
    # Aporia's own: an answer with an action it does not define.
    extra_outages = ("unknown_action",)

    def break_vendor(self, vendor: FakeVendor, outage: str) -> str:
        if outage == "unknown_action":
            vendor.reply = {"action": "allow-everything"}
            return vendor.url
        return super().break_vendor(vendor, outage)
