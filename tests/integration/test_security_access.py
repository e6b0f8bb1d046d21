"""Access: every /api/v1 route refuses a missing or wrong token, secrets are compared in
constant time, the dashboard cookie is locked down, placeholder secrets are refused
outside dev mode, bodies are size-limited (413) and every response carries the security
headers. In process, on a fresh SQLite database: no Kafka needed."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from services import auth
from services.config import PLACEHOLDER_SECRETS, Settings
from services.guards import MiB, limit_for
from tests.stack import GOOD_SECRET, GOOD_TOKEN

TOKEN = "test-api-token-0123456789abcdefgh"  # 32+: production mode refuses less
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36"


def local_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for an in-process app on a fresh SQLite database, no Kafka."""
    from services.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'winwin.db'}"
    if not (tmp_path / "winwin.db").exists():
        upgrade(url)
    values = (
        dict(
            env="dev",
            database_url=url,
            state_dir=tmp_path / "state",
            kafka_bootstrap="",
            secret_key="test-secret-key-0123456789abcdefgh",
            api_token=TOKEN,
            public_base_url="http://testserver",
        )
        | overrides
    )
    return Settings(**values)


def local_client(
    tmp_path: Path, authorized: bool = True, now: Any = None, **overrides: Any
) -> TestClient:
    from services.api import create_app
    from services.bootstrap import bootstrap

    headers = {"User-Agent": BROWSER} | ({"Authorization": f"Bearer {TOKEN}"} if authorized else {})
    settings = local_settings(tmp_path, **overrides)
    app = create_app(bootstrap(settings, now=now) if now else bootstrap(settings))
    return TestClient(app, headers=headers, raise_server_exceptions=False)


@pytest.fixture
def anonymous(tmp_path: Path) -> Iterator[TestClient]:
    with local_client(tmp_path, authorized=False) as client:
        yield client


def all_routes(routes: Any) -> Iterator[Any]:
    """Every route of the app, through included routers (old and new FastAPI)."""
    for route in routes:
        if hasattr(route, "effective_candidates"):
            yield from all_routes(route.effective_candidates())
        elif hasattr(route, "routes") and not hasattr(route, "path"):
            yield from all_routes(route.routes)
        else:
            yield route


def api_v1_calls(app: Any) -> list[tuple[str, str]]:
    calls = set()
    for route in all_routes(app.routes):
        path = getattr(route, "path", "")
        if path.startswith("/api/v1"):
            concrete = re.sub(r"\{[^}]+\}", "x1", path)
            calls.update(
                (method, concrete) for method in getattr(route, "methods", None) or ["GET"]
            )
    return sorted(calls)


def test_every_api_v1_route_refuses_missing_or_wrong_token(anonymous: TestClient):
    calls = api_v1_calls(anonymous.app)
    assert len(calls) >= 15, calls  # the walk found the routers' routes
    wrong = [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Cookie": f"{auth.SESSION_COOKIE}={TOKEN}"},  # the token is not a session
    ]
    refused = 0
    for method, path in calls:
        for headers in wrong:
            for body in (None, b"[{}]", b"{not json"):
                r = anonymous.request(
                    method, path, headers=headers, content=body, params={"limit": "1"}
                )
                assert r.status_code == 401, (
                    method,
                    path,
                    headers,
                    body,
                    r.status_code,
                    r.text[:200],
                )
                if method != "HEAD":
                    assert r.headers.get("www-authenticate") == "Bearer"
                refused += 1
    print(
        f"\n[access] {len(calls)} /api/v1 method+path pairs, {refused} unauthorized calls, all 401"
    )


def test_tokens_are_compared_in_constant_time(tmp_path: Path):
    settings = local_settings(tmp_path)
    for fn in (auth.token_ok, auth.check_same_site):  # the token and the CSRF token
        source = inspect.getsource(fn)
        assert "hmac.compare_digest" in source and "==" not in source, fn.__name__
    assert auth.token_ok(settings, TOKEN)
    for given in ("", TOKEN[:-1], TOKEN + "x", "é" * 25, "\x00" * 25, TOKEN.upper()):
        assert not auth.token_ok(settings, given)
    # the redirect tokens' MAC too
    from services.tracking import tokens

    assert "hmac.compare_digest" in inspect.getsource(tokens.Tokens.verify)


@pytest.mark.parametrize(
    ("base_url", "env", "secure"),
    [
        ("http://testserver", "dev", False),
        ("https://winwin.example.org", "dev", True),
        ("http://testserver", "production", True),
    ],
)
def test_dashboard_login_cookie_is_httponly_samesite_and_secure_off_plain_http_dev(
    tmp_path: Path, base_url: str, env: str, secure: bool
):
    extra = {"sendgrid_webhook_public_key": ""} if env == "production" else {}
    with local_client(
        tmp_path, authorized=False, public_base_url=base_url, env=env, **extra
    ) as client:
        bad = client.post("/login", data={"token": "nope"}, follow_redirects=False)
        assert bad.status_code == 401 and "set-cookie" not in bad.headers
        r = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
        assert r.status_code == 303
        cookie = r.headers["set-cookie"]
        attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
        assert cookie.startswith(f"{auth.SESSION_COOKIE}=") and TOKEN not in cookie
        assert "httponly" in attrs and re.search(r"samesite=(strict|lax)", cookie, re.I)
        assert ("secure" in attrs) is secure


@pytest.mark.parametrize("placeholder", sorted(PLACEHOLDER_SECRETS | {"short-secret", "CHANGEME"}))
def test_placeholder_secrets_are_refused_outside_dev(tmp_path: Path, placeholder: str):
    good = {"secret_key": GOOD_SECRET, "api_token": GOOD_TOKEN}
    for field in ("secret_key", "api_token"):
        values = good | {field: placeholder}
        with pytest.raises(ValidationError, match=field.upper()):
            Settings(env="production", state_dir=tmp_path, **values)
    Settings(env="production", state_dir=tmp_path, **good)


def test_oversized_bodies_are_refused_with_413_before_they_are_read(tmp_path: Path):
    with local_client(tmp_path) as client:
        for path in ("/api/v1/events", "/api/v1/contacts", "/api/v1/templates", "/api/v1/links"):
            big = b"[" + b" " * (limit_for(path) + 10) + b"]"
            r = client.post(path, content=big, headers={"Content-Type": "application/json"})
            assert r.status_code == 413, (path, r.status_code)
            assert "larger than" in r.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            yield b"["
            for _ in range(limit_for("/api/v1/events") // MiB + 1):
                yield b" " * MiB
            yield b"]"

        assert client.post("/api/v1/events", content=chunks()).status_code == 413
        webhook = b"[" + b" " * (16 * MiB + 1) + b"]"
        assert client.post("/webhooks/sendgrid/events", content=webhook).status_code == 413
        # under the limit: the normal answer (here: 422, not an array of events)
        assert client.post("/api/v1/events", content=b"[" + b" " * MiB + b"]").status_code == 422
        spec = client.get("/openapi.json").json()
        documented = [
            op
            for item in spec["paths"].values()
            for op in item.values()
            if isinstance(op, dict) and "requestBody" in op
        ]
        assert documented and all("413" in op["responses"] for op in documented)


def test_every_response_carries_security_headers(tmp_path: Path):
    with local_client(tmp_path, authorized=False, public_base_url="https://w.example") as client:
        for path in (
            "/",
            "/healthz",
            "/r/not-a-token",
            "/u/nope",
            "/o/nope.gif",
            "/api/v1/contacts",
            "/openapi.json",
            "/nowhere",
        ):
            r = client.get(path, follow_redirects=False)
            public = path != "/"  # staff pages may keep the referrer on their own origin
            policy = r.headers["referrer-policy"]
            assert (
                policy == "no-referrer" if public else policy in ("no-referrer", "same-origin")
            ), path
            assert r.headers["x-content-type-options"] == "nosniff", path
            assert r.headers["x-frame-options"] == "DENY", path
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
            assert r.headers["strict-transport-security"].startswith("max-age="), path


def test_unsigned_webhooks_are_refused_outside_dev_without_a_key(tmp_path: Path):
    item = [{"event": "open", "ww_person": "p" + "0" * 32, "timestamp": 1, "sg_event_id": "a"}]
    good = {"secret_key": GOOD_SECRET, "api_token": GOOD_TOKEN}
    with local_client(tmp_path, env="production", **good) as client:
        assert client.post("/webhooks/sendgrid/events", json=item).status_code == 403
