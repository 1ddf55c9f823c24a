"""The wheel ships every package of the source tree: pyproject.toml lists its packages by
hand, and a package left out installs fine here (this checkout is installed in editable mode)
yet is missing from every other install."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11's")

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_of_the_source_is_in_the_wheel_list():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())
                 ["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts)
             for top in ("monitor", "trainer_client", "ganwatch")
             for init in (ROOT / top).rglob("__init__.py")}
    assert found, "the source tree has packages"
    assert found - listed == set()
    assert "monitor.store" in listed
