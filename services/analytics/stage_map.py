"""The stage map as stored configuration (``settings`` row ``stage_map``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.db.models import Setting
from services.db.upsert import upsert
from services.domain.stages import DEFAULT_STAGE_MAP, StageMap

KEY = "stage_map"


def load_stage_map(session: Session) -> StageMap:
    row = session.get(Setting, KEY)
    return StageMap.from_dict(row.value) if row else DEFAULT_STAGE_MAP


def save_stage_map(session: Session, stage_map: StageMap) -> None:
    upsert(session, Setting.__table__, [{"key": KEY, "value": stage_map.to_dict()}], ["key"])
