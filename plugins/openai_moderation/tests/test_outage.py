"""When OpenAI cannot give a verdict: the core's outage contract."""

from __future__ import annotations

import gatehouse_openai_moderation
from gatehouse.testing import FakeVendor, OutageContract


class TestOpenAIModerationOutage(OutageContract):
    plugin = gatehouse_openai_moderation
    guardrail_type = "openai_moderation"
    modes = ("pre_call", "during_call", "post_call")
    # OpenAI's answer to a bad key, and a reply without a verdict.
    extra_outages = ("http_401", "no_results")

    def break_vendor(self, vendor: FakeVendor, outage: str) -> str:
        if outage == "no_results":
            vendor.reply = {"id": "modr-x", "model": "omni-moderation-latest", "results": []}
            return vendor.url
        return super().break_vendor(vendor, outage)
