"""What pip and pytest see of the distributions: every plugin depends on the core by its own
name, gatehouse-proxy (PyPI's "gatehouse" is another project), and installing the core leaves
other projects' pytest alone."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import PathDistribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))
CORE = "gatehouse-proxy"


def built_metadata(project: Path, out: Path) -> PathDistribution:
    """The project's metadata as a build makes it (the PEP 517 hook pip calls)."""
    result = subprocess.run(
        [sys.executable, "-c", "import sys, setuptools.build_meta as backend; "
                               "print(backend.prepare_metadata_for_build_wheel(sys.argv[1]))",
         str(out)], cwd=project, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return PathDistribution(out / result.stdout.strip().splitlines()[-1])


def requirements(dist: PathDistribution) -> list[Requirement]:
    return [Requirement(r) for r in dist.requires or ()]


def test_the_core_distribution_is_gatehouse_proxy(tmp_path):
    assert built_metadata(ROOT, tmp_path).metadata["Name"] == CORE


@pytest.mark.parametrize("project", PLUGINS, ids=[p.name for p in PLUGINS])
def test_each_plugin_requires_the_core_by_its_distribution_name(project, tmp_path):
    dist = built_metadata(project, tmp_path)
    assert dist.metadata["Name"].startswith("gatehouse-")
    required = requirements(dist)
    assert "gatehouse" not in {r.name for r in required}
    core = {(r.name, frozenset(r.extras), str(r.marker)) for r in required if r.name == CORE}
    # Always, and with its test tools for the plugin's own test extra.
    assert core == {(CORE, frozenset(), "None"),
                    (CORE, frozenset({"test"}), 'extra == "test"')}


def test_installing_the_core_leaves_other_projects_pytest_alone(tmp_path):
    """An environment with the core and pytest but no pytest-asyncio runs an unrelated test
    suite as if the core were not there: the test kit is opt-in."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT), "pytest"],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr
    project = tmp_path / "elsewhere"
    project.mkdir()
    (project / "test_unrelated.py").write_text(textwrap.dedent("""
        def test_arithmetic():
            assert 1 + 1 == 2
    """))
    result = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                            cwd=project, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    gone = subprocess.run([str(python), "-c", "import pytest_asyncio"], capture_output=True,
                          timeout=60)
    assert gone.returncode != 0  # the environment really lacks it
