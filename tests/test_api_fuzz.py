"""Schemathesis against /openapi.json: bodies and parameters generated from the document, sent
with the master key to a real gateway process (models kept in its database, so the model
routes run too). No generated request may get a 5xx: a client mistake is always a 4xx."""

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error

from test_shared_state import Gatehouse

MASTER = "sk-gh-fuzz-3c8e1f0a9b7d4e26"
HEADERS = {"Authorization": f"Bearer {MASTER}"}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    config = {"model_list": [{"model_name": "gpt-4o", "params": {"model": "mock/echo"}}],
              "general_settings": {"master_key": MASTER, "store_model_in_db": True,
                                   "database_path": str(folder / "gatehouse.db")}}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    gateway = Gatehouse(path)
    try:
        gateway.wait_ready()
        yield schemathesis.openapi.from_url(f"http://127.0.0.1:{gateway.port}/openapi.json")
    finally:
        returncode, stderr = gateway.stop()
    assert returncode == 0 and "Traceback (most recent call last)" not in stderr, stderr


# Enough to send each operation a handful of generated bodies while keeping the run well under
# a minute on a 2-core machine.
EXAMPLES = settings(max_examples=5, deadline=None, phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck), database=None)


def test_no_generated_request_gets_a_server_error(api_schema):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 80  # every route: admin, OpenAI and ops
    failed = {}
    for operation in operations:
        @EXAMPLES
        @given(case=operation.as_strategy())
        def send(case):
            case.call_and_validate(headers=HEADERS, checks=[not_a_server_error])

        try:
            send()
        except Exception as exc:  # noqa: BLE001 - gathered, so one run names every failure
            failed[operation.label] = str(exc)[:2000]
    assert not failed, failed
