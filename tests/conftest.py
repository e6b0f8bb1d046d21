"""Shared fixtures: real Apache Kafka and PostgreSQL for integration and e2e tests.

Fixtures (services start lazily, only when a test asks for them):

* ``kafka_bootstrap`` (session, str "127.0.0.1:PORT"): one real Kafka 4.x broker
  (KRaft, from deploy/kafka/lib) for the whole session, or the external broker named
  by ``WINWIN_TEST_KAFKA_BOOTSTRAP``.
* ``kafka_broker`` (session, tests.kafka_cluster.KafkaBroker): the same session broker
  as an object, for outage tests (``stop_process()`` / ``start_process()``). Not available
  with an external broker. Tests that stop it must start it again before they end.
* ``private_kafka_broker`` (function, KafkaBroker): a brand-new broker for this test only
  (about 3 s to start); for tests that must not disturb or be disturbed by others.
* ``postgres_server`` (session, tests.pg_cluster.PostgresServer): ``.create_database()``
  returns the URL of a fresh empty database (dropped at session end).
* ``postgres_url`` (session, str): one fresh database for the session.
* ``database_url`` (function, str; params "sqlite" and "postgres"): a fresh empty
  database per test: a SQLite file in tmp_path, or a new PostgreSQL database.

When Java/the jars or PostgreSQL are missing, the tests that need them are skipped, unless
``WINWIN_TEST_REQUIRE_KAFKA=1`` / ``WINWIN_TEST_REQUIRE_POSTGRES=1`` (as in .ci/run): then
they fail with the reason.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from sqlalchemy import Engine

from tests.kafka_cluster import KafkaBroker, KafkaUnavailable
from tests.pg_cluster import PostgresServer, PostgresUnavailable, find_server


def _required(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _unavailable(require_env: str, reason: str) -> NoReturn:
    """Skip, or fail when ``require_env`` says the service is required."""
    if _required(require_env):
        pytest.fail(f"{reason} ({require_env}=1, so this is a failure)", pytrace=False)
    pytest.skip(reason)


# --- Kafka ---------------------------------------------------------------------------


def _external_bootstrap() -> str:
    return os.environ.get("WINWIN_TEST_KAFKA_BOOTSTRAP", "").strip()


def _start_broker() -> KafkaBroker:
    try:
        broker = KafkaBroker()
    except KafkaUnavailable as e:
        reason = f"Kafka unavailable: {e}"
    else:
        reason = ""
    if reason:
        _unavailable("WINWIN_TEST_REQUIRE_KAFKA", reason)
    try:
        broker.start()
    except BaseException:
        broker.stop()
        raise
    return broker


@pytest.fixture(scope="session")
def _session_broker() -> Iterator[KafkaBroker | None]:
    if _external_bootstrap():
        yield None
        return
    broker = _start_broker()
    print(f"\n[kafka] broker {broker.bootstrap} ready in {broker.start_seconds:.1f}s")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(_session_broker: KafkaBroker | None) -> str:
    if _session_broker is None:
        return _external_bootstrap()
    if not _session_broker.is_running():  # an outage test left it stopped
        _session_broker.start_process()
    return _session_broker.bootstrap


@pytest.fixture(scope="session")
def kafka_broker(_session_broker: KafkaBroker | None) -> KafkaBroker:
    if _session_broker is None:
        _unavailable(
            "WINWIN_TEST_REQUIRE_KAFKA",
            "WINWIN_TEST_KAFKA_BOOTSTRAP points at an external broker; "
            "this test needs a broker it can stop and restart",
        )
    assert _session_broker is not None
    return _session_broker


@pytest.fixture
def private_kafka_broker() -> Iterator[KafkaBroker]:
    broker = _start_broker()
    try:
        yield broker
    finally:
        broker.stop()


# --- PostgreSQL ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = find_server()
    except PostgresUnavailable as e:
        reason = str(e)
    else:
        reason = ""
    if reason:
        _unavailable("WINWIN_TEST_REQUIRE_POSTGRES", reason)
    try:
        yield server
    finally:
        server.drop_created()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    with a_database(request.param, request, tmp_path) as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on ``database_url`` (SQLite, then PostgreSQL), migrated."""
    from services.db.migrate import upgrade
    from services.db.session import make_engine

    upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@contextlib.contextmanager
def a_database(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of ``kind`` ("sqlite" or "postgres"), for this test."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'winwin.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    try:
        yield url
    finally:
        # A failure here is retried by drop_created() at session end.
        with contextlib.suppress(Exception):
            server.drop_database(url)


# --- on failure: the stream worker's own words ---------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    """A failing test that ran a stream worker (``tests.stack.Stack``) shows the end of
    the worker's log in its report: a timeout alone says *that* counts did not arrive,
    the log says why (a dead sink, a locked database, a crash)."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    from tests.stack import Stack

    values = getattr(item, "funcargs", {}).values()
    for value in (v for arg in values for v in (arg if isinstance(arg, tuple) else (arg,))):
        if isinstance(value, Stack):  # a fixture's value, or one of a tuple (``served``)
            with contextlib.suppress(Exception):
                report.sections.append(
                    ("stream worker log (last 6,000 chars)", value.worker_log()[-6000:])
                )
                relay = getattr(value, "_relay_thread", None)
                report.sections.append(("relay", f"thread alive: {relay and relay.is_alive()}"))


# --- what a test left running ---------------------------------------------------------

_LEFT_RUNNING = pytest.StashKey[list[str]]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):  # type: ignore[no-untyped-def]
    """Note the threads and child processes a test left running: the summary names the
    tests that leave them. (A Kafka producer thread retrying a broker that was gone still
    ran at the end of a CI run whose last, unit, tests ran many times slower than alone.)"""
    threads, children = set(threading.enumerate()), _children()
    yield
    left = [t.name for t in threading.enumerate() if t not in threads and t.is_alive()]
    left += [_command(pid) for pid in sorted(_children() - children)]
    if left:
        item.config.stash.setdefault(_LEFT_RUNNING, []).append(f"{item.nodeid}: {left}")


def _children() -> set[str]:
    """This process's child pids (Linux; 0.2 ms, where scanning /proc takes ~5 ms)."""
    found: set[str] = set()
    for path in Path("/proc/self/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found |= set(path.read_text().split())
    return found


def _command(pid: str) -> str:
    """``pid N: its command line`` (the first 80 characters)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        command = b"(gone)"
    return f"pid {pid}: {command[:80].decode(errors='replace')}"


def pytest_terminal_summary(terminalreporter, config):  # type: ignore[no-untyped-def]
    left = config.stash.get(_LEFT_RUNNING, [])
    if left:
        terminalreporter.section("left running by tests (threads, child processes)")
        for line in left:
            terminalreporter.write_line(line)
