"""JSON Schemas (draft 2020-12) for every topic payload, and a cached loader."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

__all__ = ["load", "validator", "errors_of", "NAMES"]

NAMES = (
    "engagement.v1",
    "identity.v1",
    "touch.v1",
    "credit.v1",
    "envelope.v1",
    "deadletter.v1",
)


@cache
def load(name: str) -> dict[str, Any]:
    """The schema document ``name`` (e.g. ``"engagement.v1"``)."""
    text = resources.files(__name__).joinpath(f"{name}.json").read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


@cache
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(load(name), format_checker=FormatChecker())


def errors_of(name: str, instance: object) -> str | None:
    """None when valid, else one line naming the first offending field."""
    error = next(iter(validator(name).iter_errors(instance)), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{where}: {error.message}"
