"""When Presidio cannot answer: the core's outage contract, for the analyzer and for the
anonymizer."""

from __future__ import annotations

import re

import gatehouse_presidio
import pytest
from gatehouse.testing import FakeVendor, OutageContract


class TestPresidioAnalyzerOutage(OutageContract):
    plugin = gatehouse_presidio
    guardrail_type = "presidio"
    modes = ("pre_call", "during_call", "post_call")
    api_base_param = "presidio_analyzer_api_base"
    # Presidio's own: an error object instead of results, and a span outside the text.
    extra_outages = ("error_object", "span_outside")

    @pytest.fixture
    def guardrail_params(self, presidio):
        return {"presidio_anonymizer_api_base": presidio.url}

    def break_vendor(self, vendor: FakeVendor, outage: str) -> str:
        if outage == "error_object":
            vendor.reply = {"error": "No matching recognizers were found to serve the request."}
            return vendor.url
        if outage == "span_outside":
            vendor.reply = [{"entity_type": "PERSON", "start": 0, "end": 999, "score": 0.9}]
            return vendor.url
        return super().break_vendor(vendor, outage)


class TestPresidioAnonymizerOutage(TestPresidioAnalyzerOutage):
    api_base_param = "presidio_anonymizer_api_base"
    # during_call only refuses: the request is already upstream, so nothing is anonymized.
    modes = ("pre_call", "post_call")
    extra_outages = ("no_text",)

    @pytest.fixture
    def guardrail_params(self, presidio):
        # An analyzer that finds a person in every text's first word, so the anonymizer is
        # always asked.
        def first_word(path, body):
            word = re.match(r"\w+", body["text"])
            return [{"entity_type": "PERSON", "start": 0, "end": word.end(), "score": 0.9}]

        presidio.decide = first_word
        return {"presidio_analyzer_api_base": presidio.url}

    def break_vendor(self, vendor: FakeVendor, outage: str) -> str:
        if outage == "no_text":
            vendor.reply = {"items": []}
            return vendor.url
        return super(TestPresidioAnalyzerOutage, self).break_vendor(vendor, outage)
