"""An installed (not editable) copy holds every package of the source tree."""

from __future__ import annotations

import tomllib


def test_every_package_is_listed_for_installation(repo_root):
    listed = set(tomllib.loads((repo_root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    source = {
        ".".join(init.parent.relative_to(repo_root).parts)
        for init in (repo_root / "prefs_service").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert source <= listed
    assert listed - source == {"prefs_service.migrations"}  # shipped from the top-level migrations/ folder
