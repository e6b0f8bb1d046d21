"""The domain, the service layer and the use cases stay strictly typed: mypy --strict
over every module pyproject.toml's mypy overrides mark ``strict = true`` (the one list;
``make lint`` runs the same check). In-process (mypy's API) and incremental: the cache
under .mypy_cache makes a second run take about a second, a cold one about 20 s.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[2]


def strict_modules() -> list[str]:
    """The module patterns of pyproject's strict overrides (``services.campaigns.*``)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    overrides = config["tool"]["mypy"]["overrides"]
    return [m for o in overrides if o.get("strict") for m in o["module"]]


def as_path(module: str) -> Path:
    """``services.campaigns.*`` → services/campaigns; ``services.ports`` → services/ports.py."""
    parts = module.removesuffix(".*").split(".")
    package = ROOT.joinpath(*parts)
    return package if module.endswith(".*") else package.with_suffix(".py")


def test_the_strict_list_names_files_that_exist() -> None:
    paths = [as_path(m) for m in strict_modules()]
    assert len(paths) >= 10, "the strict list shrank: it only grows"
    assert [p for p in paths if not p.exists()] == []


def test_mypy_strict_passes_on_the_strict_list() -> None:
    paths = [str(as_path(m)) for m in strict_modules()]
    config = ["--config-file", str(ROOT / "pyproject.toml")]
    cache = ["--cache-dir", str(ROOT / ".mypy_cache")]
    out, err, status = api.run([*config, *cache, "--strict", *paths])
    assert status == 0, out + err
