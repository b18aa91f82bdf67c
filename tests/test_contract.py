"""The reusable guardrail contract, run against the core's own probe guardrail -- and shown to
catch a guardrail that breaks it."""

import pytest

from doubles import Probe, ProbePlugin, StreamProbe
from gatehouse import hookimpl
from gatehouse.testing import GuardrailContract


class TestProbeHonoursTheContract(GuardrailContract):
    plugin = ProbePlugin()
    guardrail_type = "stream_probe"
    modes = ("pre_call", "during_call", "post_call", "logging_only")
    blocked_text = "a forbidden request"
    blocked_reply = "a forbidden reply"
    rewritten_text = "please rewrite me"

    @pytest.fixture
    def guardrail_params(self):
        return {"block_word": "forbidden", "append": " (checked)"}


class LeakyStream(StreamProbe):
    """Checks only each chunk on its own, so a word split across chunks slips through."""

    stream_holdback = 0

    @hookimpl
    def post_call_stream(self, chunk):
        pass


class LeakyPlugin:
    @hookimpl
    def register_guardrails(self, register):
        register("leaky", LeakyStream)


class LeakyContract(GuardrailContract):
    plugin = LeakyPlugin()
    guardrail_type = "leaky"
    modes = ("pre_call", "post_call")
    blocked_reply = "a forbidden reply"

    @pytest.fixture
    def guardrail_params(self):
        return {"block_word": "forbidden"}


async def test_contract_catches_a_guardrail_that_leaks_on_streams(gateway, fake_upstream):
    contract = LeakyContract()
    start = LeakyContract.start.__wrapped__(contract, gateway, {"block_word": "forbidden"}, {})
    with pytest.raises(AssertionError):
        await contract.test_checks_streams_before_content_is_sent(start, fake_upstream)


def test_clauses_that_do_not_apply_are_left_out():
    class PreOnlyContract(GuardrailContract):
        plugin = ProbePlugin()
        guardrail_type = "probe"
    assert PreOnlyContract.test_rewrite_keeps_message_structure_and_other_parts is None
    assert PreOnlyContract.test_checks_streams_before_content_is_sent is None
    assert callable(PreOnlyContract.test_each_declared_mode_runs_and_allows_clean_text)
    assert Probe.default_modes == ("pre_call",)
