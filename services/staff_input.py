"""The base of every staff input model: no field may hold text SQL cannot store.

PostgreSQL refuses a NUL character in ``text`` and ``json`` (SQLite keeps it): without
this check a NUL in a campaign name, a contact id or a template answered 500 on
PostgreSQL only. Every field of a model built on :class:`StaffInput` (strings, and the
keys and values of lists and objects at any depth) is checked once, here; the 422 names
the field (``loc``), as for any other validation error.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, field_validator

from services.domain.inputs import unstorable

__all__ = ["StaffInput"]


class StaffInput(BaseModel):
    """A staff API body: refused (422, naming the field) when it holds unstorable text."""

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        problem = unstorable(value)
        if problem is not None:
            raise ValueError(problem)
        return value
