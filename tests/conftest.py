import sys
import textwrap

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


@pytest.fixture
def site(tmp_path, monkeypatch):
    """Install fake distributions: ``site(dist, module, source, version)``."""
    monkeypatch.syspath_prepend(str(tmp_path))
    added = []

    def install(dist, module, source, version="1.0"):
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        info = tmp_path / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[gatehouse]\n{module} = {module}\n")
        added.append(module)

    yield install
    for module in added:
        sys.modules.pop(module, None)
