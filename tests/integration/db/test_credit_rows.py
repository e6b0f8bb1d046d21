"""Migration 0028_credit_rows: credits stored per (event, model, window, touch), with
rows all models agreed on under model ``*``, become one row per (event, window, touch)
with a weight per model, and the reads answer as before (issue 19)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import select, text

from services.analytics.credit_rows import model_weights
from services.analytics.metrics import attribution
from services.db.migrate import alembic_config, upgrade
from services.db.models import Credit
from services.db.session import make_engine, make_sessionmaker

OLD = [  # (event, model, touch, campaign, weight)
    ("e1", "*", "t1", "c1", 1.0),  # one touch: every model alike
    ("e2", "last_touch", "t2", "c2", 1.0),
    ("e2", "first_touch", "t1", "c1", 1.0),
    ("e2", "linear", "t1", "c1", 0.5),
    ("e2", "linear", "t2", "c2", 0.5),
    ("e2", "time_decay", "t1", "c1", 0.25),
    ("e2", "time_decay", "t2", "c2", 0.75),
    ("e2", "position_based", "t1", "c1", 0.5),
    ("e2", "position_based", "t2", "c2", 0.5),
    ("e3", "*", "-", "unattributed", 1.0),
]
INSERT = text(
    "INSERT INTO credits (event_id, model, window_days, touch_id, campaign_id, weight,"
    " stage, person, occurred_at, month, week, day) VALUES (:e, :m, 30, :t, :c, :w, 'use',"
    " :e, '2024-05-02 10:00:00+00:00', '2024-05', '2024-W18', '2024-05-02')"
)


def test_old_credit_rows_become_one_row_per_touch_and_read_the_same(database_url):
    upgrade(database_url, "0008_credits_by_day")
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            for e, m, t, c, w in OLD:
                conn.execute(INSERT, {"e": e, "m": m, "t": t, "c": c, "w": w})
        upgrade(database_url)
        sessions = make_sessionmaker(engine)
        with sessions() as s:
            rows = s.execute(select(Credit.__table__)).mappings().all()
            stored = {(r["event_id"], r["touch_id"]): dict(model_weights(r)) for r in rows}
            answers = {
                m: {(r["key"], r["credited"]) for r in attribution(s, m, 30)["rows"]}
                for m in ("last_touch", "first_touch", "time_decay")
            }
        every = ("last_touch", "first_touch", "linear", "time_decay", "position_based")
        assert stored == {
            ("e1", "t1"): dict.fromkeys(every, 1.0),
            ("e2", "t1"): {"first_touch": 1.0, "linear": 0.5, "time_decay": 0.25}
            | {"position_based": 0.5},
            ("e2", "t2"): {"last_touch": 1.0, "linear": 0.5, "time_decay": 0.75}
            | {"position_based": 0.5},
            ("e3", "-"): dict.fromkeys(every, 1.0),
        }
        assert answers == {
            "last_touch": {("c1", 1.0), ("c2", 1.0), ("unattributed", 1.0)},
            "first_touch": {("c1", 2.0), ("unattributed", 1.0)},
            "time_decay": {("c1", 1.25), ("c2", 0.75), ("unattributed", 1.0)},
        }
        # And back: one row per model that credits a touch (the old reads take those).
        command.downgrade(alembic_config(database_url), "0008_credits_by_day")
        with engine.connect() as conn:
            found = conn.execute(text("SELECT event_id, model, touch_id, weight FROM credits"))
            back = sorted(tuple(r) for r in found)
        assert len(back) == 5 + 8 + 5
        assert ("e2", "time_decay", "t2", 0.75) in back and ("e3", "linear", "-", 1.0) in back
    finally:
        engine.dispose()
