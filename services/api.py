"""FastAPI app assembly: health, the routers of each area, and the lifecycle."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import select

from services.analytics.dashboard import router as dashboard_router
from services.analytics.export_routes import router as export_router
from services.analytics.panels import refresh_prometheus
from services.analytics.prometheus import exposition
from services.analytics.routes import router as analytics_router
from services.api_docs import serve_docs
from services.audit import AuditTrail
from services.bootstrap import AppDep, Container, bootstrap
from services.bus.producer import kafka_reachable
from services.campaigns.audience_routes import router as audience_router
from services.campaigns.clone_routes import router as clone_router
from services.campaigns.delivery_routes import router as delivery_router
from services.campaigns.guardian_routes import router as guardian_router
from services.campaigns.import_routes import router as import_router
from services.campaigns.routes import router as campaigns_router
from services.campaigns.social_routes import router as social_router
from services.campaigns.template_routes import router as template_router
from services.campaigns.toolkit_routes import router as toolkit_router
from services.config import Settings
from services.console.outreach_routes import router as outreach_router
from services.console.routes import router as console_router
from services.db.models import OutboxMessage, WorkerHeartbeat
from services.experiments.routes import router as experiments_router
from services.guards import BodyLimit, SecurityHeaders, document_errors
from services.journeys.routes import router as journeys_router
from services.json_bodies import JSONBodyRoute
from services.privacy_routes import router as privacy_router
from services.signin import SignInLimits
from services.staff_routes import router as staff_router
from services.tracking.bot_report import router as bot_report_router
from services.tracking.care_routes import router as care_router
from services.tracking.inbound import router as inbound_router
from services.tracking.routes import ClickRoutes
from services.tracking.routes import router as tracking_router

log = logging.getLogger(__name__)
HEARTBEAT_FRESH = timedelta(seconds=10)


def create_app(container: Container | None = None, settings: Settings | None = None) -> FastAPI:
    """The HTTP app. ``container`` lets tests and ``winwin up`` share wiring."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        c = app.state.container
        c.gatherer.start()
        app.state.kafka = KafkaProbe(c.settings)
        app.state.kafka.start()
        yield
        app.state.kafka.stop()
        c.gatherer.stop()

    app = FastAPI(
        title="WINWIN",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served offline by services.api_docs
        redoc_url=None,
        description="Outreach and attribution engine for a Collaborative Learning Health System.",
    )
    app.router.route_class = JSONBodyRoute  # health and docs: no NaN in a body either
    app.state.container = container or bootstrap(settings)
    app.state.sign_in_limits = SignInLimits()  # failed sign-ins, in this process's memory
    app.include_router(tracking_router)
    app.include_router(campaigns_router)
    app.include_router(delivery_router)
    app.include_router(analytics_router)
    app.include_router(dashboard_router)
    app.include_router(bot_report_router)
    app.include_router(toolkit_router)
    app.include_router(social_router)
    app.include_router(inbound_router)
    app.include_router(journeys_router)
    app.include_router(staff_router)
    app.include_router(experiments_router)
    app.include_router(privacy_router)
    app.include_router(export_router)
    app.include_router(console_router)
    app.include_router(outreach_router)
    app.include_router(template_router)
    app.include_router(care_router)
    app.include_router(guardian_router)
    app.include_router(audience_router)
    app.include_router(clone_router)
    app.include_router(import_router)
    _guard(app)
    serve_docs(app)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or "body", "error": e["msg"]}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz(request: Request, c: AppDep) -> JSONResponse:
        kafka_ok = request.app.state.kafka.ok
        worker_ok = _worker_consuming(c)
        relay_ok = _relay_sending(c)
        ready = kafka_ok and worker_ok and relay_ok
        body = {
            "status": "ready" if ready else "not ready",
            "kafka": kafka_ok,
            "stream_worker": worker_ok,
            "relay": relay_ok,
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    def metrics(c: AppDep) -> PlainTextResponse:
        refresh_prometheus(c)
        return PlainTextResponse(exposition(), media_type="text/plain; version=0.0.4")

    return app


def _guard(app: FastAPI) -> None:
    """Body size limits (413, documented in the OpenAPI document) and security headers."""
    https = app.state.container.settings.public_base_url.startswith("https")
    app.router.redirect_slashes = False  # its Location echoes the Host header: an open redirect
    app.add_middleware(AuditTrail)  # every successful change through /api/v1, in one place
    app.add_middleware(ClickRoutes)  # /r and /o answered inside the guards, before routing
    app.add_middleware(SecurityHeaders, https=https)
    app.add_middleware(BodyLimit)
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(plain_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _worker_consuming(c: Container) -> bool:
    since = datetime.now(UTC) - HEARTBEAT_FRESH
    with c.sessions() as session:
        rows = session.execute(select(WorkerHeartbeat.seen_at, WorkerHeartbeat.info)).all()
    for seen_at, info in rows:
        seen = seen_at if seen_at.tzinfo else seen_at.replace(tzinfo=UTC)
        if seen >= since and (info or {}).get("assigned_partitions", 0) > 0:
            return True
    return False


def _relay_sending(c: Container) -> bool:
    """False while the oldest outbox row not yet sent has waited longer than
    ``WINWIN_RELAY_STALL_SECONDS`` (a relay frozen, or one that cannot reach Kafka)."""
    with c.sessions() as session:
        oldest = session.scalar(
            select(OutboxMessage.created_at)
            .where(OutboxMessage.published_at.is_(None))
            .order_by(OutboxMessage.id)
            .limit(1)
        )
    if oldest is None:
        return True
    oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
    return datetime.now(UTC) - oldest <= timedelta(seconds=c.settings.relay_stall_seconds)


class KafkaProbe:
    """Checks in the background whether Kafka answers (``/readyz`` must not block)."""

    def __init__(self, settings: Settings, interval: float = 3.0):
        self.settings = settings
        self.interval = interval
        self.ok = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kafka-probe", daemon=True)

    def start(self) -> None:
        if self.settings.kafka_bootstrap:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.ok = kafka_reachable(self.settings)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
