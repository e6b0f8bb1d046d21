"""``winwin demo``: a seeded network, outreach on all three channels, a journey, and
simulated people.

Everything goes through the real system: the supervisor runs the api, stream worker,
dispatcher and relay on the embedded broker; the network is seeded through the HTTP API
(:mod:`.network`) and its people behave over HTTP (:mod:`.simulation`). At the end the
demo reads back from the API what happened, channel by channel.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from services.accounts_cli import dev_admin_sign_in
from services.config import Settings
from services.demo.network import backfill, ok, seed_catalogue, seed_outreach
from services.demo.simulation import Simulation
from services.domain.periods import add_months, period_of
from services.supervisor import Supervisor

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
SETTLE_SECONDS = 30  # at most, for the last events to reach the counters


def run_demo(
    settings: Settings, port: int, headless: bool, duration: float | None, families: int
) -> int:
    base = f"http://127.0.0.1:{port}"
    settings = settings.model_copy(update={"public_base_url": base})
    token = settings.api_token.get_secret_value()
    with Supervisor(settings, port=port) as sup:
        client = httpx.Client(
            base_url=base,
            headers={"Authorization": f"Bearer {token}", "User-Agent": BROWSER},
            timeout=30,
        )
        public = httpx.Client(headers={"User-Agent": BROWSER}, timeout=30)
        _wait_ready(client, sup)
        if not headless:
            admin = dev_admin_sign_in(settings)
            who = f"as the admin (email / password):\n  {admin}\nor " if admin else ""
            print(
                f"\nWINWIN demo: open {base}/ and sign in {who}with the API token:\n  {token}\n(Ctrl-C stops)\n"
            )
        sim = Simulation(client, public, settings, families, random.Random(2017))
        seed_catalogue(client, [_family(i, sim.rng) for i in range(families)])
        backfill(client, families, sim.rng)
        sim.ids = seed_outreach(client)
        deadline = time.monotonic() + duration if duration else None
        try:
            while deadline is None or time.monotonic() < deadline:
                sup.watch()  # a role that died is started again
                sim.tick()
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        return _summary(client, sim)


def _wait_ready(client: httpx.Client, sup: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sup.watch()
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise TimeoutError("WINWIN did not become ready in time")


def _family(i: int, rng: random.Random) -> dict[str, Any]:
    first = rng.choice(
        ["Ana", "Ben", "Chloe", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivan", "June"]
    )
    return {
        "external_id": f"fam-{i:05d}",
        "email": f"family{i:05d}@example.net",
        "name": f"{first} Family{i}",
        "role": "patient" if i % 5 == 0 else "parent",
        "language": "es" if i % 7 == 0 else "en",
        "consent": {"email": "confirmed" if i % 10 else "unconfirmed"},
    }


def story(client: httpx.Client, sim: Simulation) -> dict[str, Any]:
    """What the demo shows, read from the API: unique people per month over the year,
    people made aware per channel and per messenger, and the journey's counts."""
    now, tz = datetime.now(UTC), sim.settings.timezone
    month, first = period_of(now, "month", tz), period_of(add_months(now, -11), "month", tz)
    stages = ok(
        client.get("/api/v1/metrics/stages", params={"period": "month", "from": first, "to": month})
    )
    channels = ok(client.get("/api/v1/attribution", params={"group_by": "channel"}))["rows"]
    board = ok(client.get("/api/v1/dashboard/panels"))["leaderboard"]
    return {
        "stages": stages,
        "channels": {r["key"]: r["people"] for r in channels if r["stage"] == "aware"},
        "messengers": {m["messenger_id"]: m["aware"] for m in board},
        "journey": ok(client.get(f"/api/v1/journeys/{sim.ids['journey']}")),
    }


def _complete(told: dict[str, Any]) -> bool:
    now = told["stages"]["rows"][-1]
    return (
        all(row["aware"] > 0 for row in told["stages"]["rows"])
        and now["aware"] > 0 and now["use"] > 0 and now["produce"] > 0
        and all(told["channels"].get(ch, 0) > 0 for ch in ("email", "social", "toolkit"))
        and len([n for n in told["messengers"].values() if n > 0]) == 3
        and told["journey"]["stats"]["acted"] > 0
    )  # fmt: skip


def _summary(client: httpx.Client, sim: Simulation) -> int:
    deadline = time.monotonic() + SETTLE_SECONDS
    told = story(client, sim)
    while not _complete(told) and time.monotonic() < deadline:
        time.sleep(1)  # the last events are on their way to the counters
        told = story(client, sim)
    rows, journey = told["stages"]["rows"], told["journey"]
    now = rows[-1]
    campaign = ok(client.get(f"/api/v1/campaigns/{sim.ids['email']}"))
    print(
        f"WINWIN demo summary ({now['period']}): aware={now['aware']} use={now['use']} produce={now['produce']}"
    )
    print("  aware per month: " + " ".join(f"{r['period']}={r['aware']}" for r in rows))
    print(
        "  people made aware per channel: "
        + " ".join(f"{k}={v}" for k, v in sorted(told["channels"].items()))
    )
    print(
        "  people made aware per messenger: "
        + " ".join(f"{k}={v}" for k, v in sorted(told["messengers"].items()))
    )
    print(
        f"  journey {journey['name']!r}: "
        + " ".join(f"{k}={v}" for k, v in journey["stats"].items())
    )
    print(f"  email campaign: {campaign['progress']}; events posted by people: {sim.posted}")
    print(f"  growth since {told['stages']['baseline']}: {told['stages']['growth']}")
    return 0 if _complete(told) else 1
