import pytest

import doubles


@pytest.fixture(autouse=True)
def _clean_doubles():
    doubles.EVENTS.clear()
    doubles.RECORDS.clear()
    yield


@pytest.fixture
def chat():
    """A chat body for the fake upstream's model."""

    def make(content: str = "hello", **extra):
        return {"model": "gpt-4o", "messages": [{"role": "user", "content": content}], **extra}

    return make
