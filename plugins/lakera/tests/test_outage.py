"""When Lakera cannot give a verdict: the core's outage contract, on both Lakera types."""

from __future__ import annotations

import gatehouse_lakera
from gatehouse.testing import FakeVendor, OutageContract


class TestLakeraOutage(OutageContract):
    plugin = gatehouse_lakera
    guardrail_type = "lakera"
    modes = ("pre_call", "during_call", "post_call")
    # Lakera's own: 401, its answer to a bad key, and a reply without a verdict it can read.
    extra_outages = ("http_401", "no_verdict")

    def break_vendor(self, vendor: FakeVendor, outage: str) -> str:
        if outage == "no_verdict":
            vendor.reply = {"flagged": "no", "payload": []}
            return vendor.url
        return super().break_vendor(vendor, outage)


class TestLakeraV1Outage(TestLakeraOutage):
    guardrail_type = "lakera_v1"
    modes = ("pre_call", "during_call")
