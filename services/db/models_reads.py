"""Bookkeeping of the read models: which attribution windows are already computed.

``credit_windows`` has one row per window that a read has computed (its
``generation``: the stored data's generation it is complete for) and one row,
``window_days = 0``, holding the stored data's current generation. The stream's sink
bumps that one whenever it stores stage events or drops credits, so a window whose row
matches it needs no work: reading it is one lookup by primary key
(:mod:`services.analytics.windows`). ``read_at`` (at most a minute old) tells
which window was read least recently: the one dropped when one too many is kept.

``stage_map_version`` tells the sink whether the stage map it holds is still the one in
force.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer
from sqlalchemy.orm import Mapped, mapped_column

from services.db.models import Base


class CreditWindow(Base):
    """A computed attribution window, or (``window_days = 0``) the data's generation."""

    __tablename__ = "credit_windows"
    window_days: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(BigInteger)
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # While a computation in steps is unfinished: the earliest step's start, and the stage
    # map's version then (migration 0032_window_computing).
    computing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    computing_map_version: Mapped[int | None] = mapped_column(Integer)


class StageMapVersion(Base):
    """The stage map's version (one row, ``id = 1``): bumped by every change of the map,
    read under a shared lock by each batch of the stream's sink
    (:func:`services.analytics.stage_map.version_in_force`)."""

    __tablename__ = "stage_map_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)
