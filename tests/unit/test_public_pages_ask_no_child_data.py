"""Public pages never ask for a child's data (issue 18): the toolkit pages' templates,
the event API's schema and the person's own pages have no birth or age field."""

from __future__ import annotations

import json
import re
from pathlib import Path

from services.tracking import care_routes, routes

ROOT = Path(__file__).resolve().parents[2]
ASKS = re.compile(r"name=[\"']?[^\"'>]*(birth|age\b|dob)", re.IGNORECASE)


def test_no_public_page_or_public_schema_asks_for_a_birth_date_or_age() -> None:
    pages = [p.read_text() for p in sorted((ROOT / "templates" / "toolkit").rglob("*.htm*"))]
    pages += [routes.PREFERENCES_PAGE, care_routes.CONFIRM_PAGE]
    assert pages and not [p for p in pages if ASKS.search(p)]
    schema = (ROOT / "schemas" / "engagement.v1.json").read_text()
    assert not re.search(r"birth|\"age\"|guardian", json.dumps(json.loads(schema)))
