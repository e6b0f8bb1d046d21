"""Bounded rendering: every staff-written template renders in a small pool of worker
processes (:mod:`services.campaigns.render_worker`), never in the API's event loop or
threads, nor in a dispatcher's own loop.

A render gets ``WINWIN_RENDER_TIMEOUT_SECONDS`` (default 2) and its message at most
``WINWIN_RENDER_MAX_BYTES`` (default 1 MB); over either, it is a :class:`TemplateProblem`
with the reason: a 422 at save and preview, a failed send (with the reason) at send time.
The worker enforces both; when a worker stops answering anyway (a long C call no signal
interrupts), the pool kills it, starts another, and fails only the render it was stuck on:
the items after it are rendered again one by one, so the culprit is known exactly.

Renders are batched: :meth:`BoundedRenderer.render_many` sends a whole dispatch batch (up
to 1000 recipients) in one job, so a recipient costs no process round trip of its own.
"""

from __future__ import annotations

import atexit
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from markupsafe import escape

from services.campaigns.render_worker import (
    FLUSH_SECONDS,
    PLACEHOLDER,
    PLACEHOLDERS,
    read_frame,
    timeout_reason,
    write_frame,
)
from services.campaigns.rendering import Rendered, SampleCheck, TemplateProblem, TemplateRenderer

if TYPE_CHECKING:
    from services.config import Settings

__all__ = ["BoundedRenderer", "RenderPool", "shared_pool"]

Parts = tuple[str | None, str | None, str]
#: Beyond the time limit, how long a silent worker is given before it is killed.
GRACE_SECONDS = 1.0
#: A worker's address-space limit (bytes): far above any sane render.
MEMORY_BYTES = 1 << 30
_START_SECONDS = 60.0
#: A batch is shared between workers only when each gets at least this many items.
MIN_SHARE = 100


class _Stuck(Exception):
    """The worker said nothing for too long, or died."""


class _Worker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - our own module, no shell
            [sys.executable, "-m", "services.campaigns.render_worker", str(MEMORY_BYTES)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        if self.read(time.monotonic() + _START_SECONDS) != "ready":
            self.kill()
            raise RuntimeError("the render worker did not start")

    def send(self, job: dict[str, Any], deadline: float) -> None:
        assert self.proc.stdin is not None
        fd = self.proc.stdin.fileno()
        os.set_blocking(fd, False)  # a worker that stops reading cannot block us
        try:
            write_frame(fd, job, _waiter(fd, deadline, write=True))
        except OSError:
            raise _Stuck from None

    def read(self, deadline: float) -> Any:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        frame = read_frame(fd, _waiter(fd, deadline, write=False))
        if frame is None:
            raise _Stuck
        return frame

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


def _waiter(fd: int, deadline: float, *, write: bool) -> Callable[[], None]:
    """Wait until ``fd`` is ready; _Stuck once ``deadline`` (monotonic) has passed."""

    def wait() -> None:
        left = deadline - time.monotonic()
        ready = left > 0 and select.select([] if write else [fd], [fd] if write else [], [], left)
        if not ready or not any(ready):
            raise _Stuck

    return wait


class RenderPool:
    """Up to ``size`` worker processes, started on first use, replaced when killed."""

    def __init__(self, size: int = 2) -> None:
        self.size = max(1, size)
        self._slots = threading.BoundedSemaphore(max(1, size))
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def run(
        self,
        items: Sequence[tuple[Parts, Mapping[str, Any], bool]],
        seconds: float,
        max_bytes: int,
    ) -> list[tuple[Any, ...]]:
        """Each item's raw result (see ``render_worker.render_one``), in order; a large
        batch is shared between the workers, which render their shares in parallel."""
        shares = min(self.size, len(items) // MIN_SHARE) or 1
        if shares == 1:
            return self._run(items, seconds, max_bytes)
        step = -(-len(items) // shares)
        parts: list[list[tuple[Any, ...]]] = [[] for _ in range(shares)]

        def share(n: int) -> None:
            parts[n] = self._run(items[n * step : (n + 1) * step], seconds, max_bytes)

        threads = [threading.Thread(target=share, args=(n,)) for n in range(1, shares)]
        for thread in threads:
            thread.start()
        share(0)
        for thread in threads:
            thread.join()
        return [result for part in parts for result in part]

    def _run(
        self,
        items: Sequence[tuple[Parts, Mapping[str, Any], bool]],
        seconds: float,
        max_bytes: int,
    ) -> list[tuple[Any, ...]]:
        results: list[tuple[Any, ...] | None] = [None] * len(items)
        careful = False  # after a kill: one frame per item, to find the culprit
        while todo := [i for i, r in enumerate(results) if r is None]:
            job = {
                "items": [(i, *items[i]) for i in todo],
                "seconds": seconds,
                "max_bytes": max_bytes,
                "flush_each": careful,
            }
            if self._exchange(job, results) or not careful:
                careful = not careful and any(r is None for r in results)
                continue
            culprit = next(i for i in todo if results[i] is None)
            results[culprit] = ("problem", timeout_reason(seconds))
            careful = False
        return [r for r in results if r is not None]

    def _exchange(self, job: dict[str, Any], results: list[Any]) -> bool:
        """Run ``job`` on a worker, filling ``results``; False if the worker was killed."""
        with self._slots:
            worker = self._take()
            patience = job["seconds"] + FLUSH_SECONDS + GRACE_SECONDS
            try:
                worker.send(job, time.monotonic() + patience)
                done = False
                while not done:
                    done, batch = worker.read(time.monotonic() + patience)
                    for index, result in batch:
                        results[index] = result
            except _Stuck:
                worker.kill()
                return False
            with self._lock:
                self._idle.append(worker)
            return True

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.proc.poll() is None:
                    return worker
                worker.kill()
        return _Worker()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()


_POOL: tuple[int, RenderPool] | None = None
_POOL_LOCK = threading.Lock()


def shared_pool(size: int) -> RenderPool:
    """This process's pool (one per process: a forked child starts its own)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != os.getpid():
            _POOL = (os.getpid(), RenderPool(size))
            atexit.register(_POOL[1].close)
        return _POOL[1]


class BoundedRenderer(SampleCheck):
    """What the application renders staff-written templates with: same calls as
    :class:`TemplateRenderer`, in worker processes, under the time and size limits.
    ``trusted`` renders WINWIN's own fixed page templates in process."""

    def __init__(self, seconds: float = 2.0, max_bytes: int = 1_000_000, workers: int = 2):
        self.seconds, self.max_bytes, self.workers = seconds, max_bytes, workers
        self.trusted = TemplateRenderer()

    @classmethod
    def from_settings(cls, settings: Settings) -> BoundedRenderer:
        return cls(
            settings.render_timeout_seconds, settings.render_max_bytes, settings.render_workers
        )

    def render(
        self, subject: str | None, html: str | None, text: str, context: Mapping[str, Any]
    ) -> Rendered:
        """One render; TemplateProblem (with the reason) when it fails or is over a limit."""
        out = self.render_many([((subject, html, text), context)])[0]
        if isinstance(out, TemplateProblem):
            raise out
        return out

    def render_many(
        self, items: Sequence[tuple[Parts, Mapping[str, Any]]]
    ) -> list[Rendered | TemplateProblem]:
        """Many renders in one job; each item's result or its problem, in order."""
        if not items:
            return []
        tracks = [_track(context) for _, context in items]
        sent = [
            (parts, _data(context, track), track is not None)
            for (parts, context), track in zip(items, tracks, strict=True)
        ]
        raw = shared_pool(self.workers).run(sent, self.seconds, self.max_bytes)
        return [_finish(r, track) for r, track in zip(raw, tracks, strict=True)]


def _track(context: Mapping[str, Any]) -> Callable[[str], str] | None:
    track = context.get("track")
    return track if callable(track) else None


def _data(context: Mapping[str, Any], track: Any) -> Mapping[str, Any]:
    """The context without its ``track`` function (the worker puts in its own)."""
    if track is None:
        return context
    return {k: v for k, v in context.items() if k != "track"}


def _finish(raw: tuple[Any, ...], track: Callable[[str], str] | None) -> Rendered | TemplateProblem:
    """Rendered, with every ``track(url)`` placeholder replaced by the caller's own link."""
    if raw[0] == "problem":
        return TemplateProblem(raw[1])
    _, subject, html, text, urls = raw
    links = []
    for n, url in enumerate(urls):
        try:
            links.append(track(url))  # type: ignore[misc]  # urls only when track was given
        except Exception as exc:  # noqa: BLE001 - the caller's track() refuses a URL
            mark = PLACEHOLDER.format(n)
            part = next(
                (p for p, s in (("subject", subject), ("html", html)) if mark in (s or "")), "text"
            )
            return TemplateProblem(f"{part}: {type(exc).__name__}: {exc}")
    if not links:
        return Rendered(subject, html, text)

    def swap(source: str | None, *, escaped: bool) -> str | None:
        if source is None or "\ue000" not in source:
            return source

        def link(match: Any) -> str:
            n = int(match[1])
            if n >= len(links):
                return str(match[0])
            return str(escape(links[n])) if escaped else links[n]

        return PLACEHOLDERS.sub(link, source)

    return Rendered(
        swap(subject, escaped=False), swap(html, escaped=True), swap(text, escaped=False) or ""
    )
