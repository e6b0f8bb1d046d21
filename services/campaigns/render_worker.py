"""A render worker process: ``python -m services.campaigns.render_worker MEMORY``.

Started and fed by :mod:`services.campaigns.render_pool`. It reads jobs (a list of items,
each a template's three parts and one context) as frames on stdin, renders each item in
the sandbox and writes the results back as frames on stdout, a batch of them at least
every :data:`FLUSH_SECONDS`, so that the pool can tell a worker that works from one that
hangs. Each item renders under

* a time limit: ``SIGALRM`` interrupts any Python-level loop (``for`` in a template);
  after :data:`STRIKES` items in a row of one template over the limit, the job's other
  items of that template are skipped (failed, with the reason), so a template slow for
  everyone costs a batch seconds, not hours;
* an output limit (``max_bytes``), checked while the template renders;
* an address-space limit (``MEMORY``) for the whole process, so a memory bomb fails with
  ``MemoryError`` instead of taking the host down.

What Python cannot interrupt (a long C call) is the pool's business: it kills the worker.
A worker whose parent is gone leaves at its next read (end of file) or write (broken
pipe): each item is bounded by the alarm, and results are written at least every
FLUSH_SECONDS.

``track(url)`` in the context is the caller's, in another process: here it records the
URL and returns a placeholder (:data:`PLACEHOLDER`), which the pool replaces with the
caller's own ``track(url)`` once the render is back.
"""

from __future__ import annotations

import os
import pickle
import re
import resource
import signal
import struct
import sys
import time
from collections import Counter
from typing import Any

from services.campaigns.rendering import TemplateProblem, TemplateRenderer

__all__ = ["PLACEHOLDER", "read_frame", "timeout_reason", "write_frame"]

#: At most this long between two result frames while a worker renders (seconds).
FLUSH_SECONDS = 0.1
#: Items in a row of one template over the time limit before its other items are skipped.
STRIKES = 3
#: ``track(url)`` returns this (with the URL's number): private-use characters, which
#: autoescaping leaves alone; the pool swaps in the real tracked link.
PLACEHOLDER = "\ue000{}\ue001"
PLACEHOLDERS = re.compile("\ue000([0-9]+)\ue001")
_HEADER = struct.Struct("!Q")


class _Timeout(BaseException):
    """Raised by SIGALRM; a BaseException so that neither Jinja nor a template catches it."""


def timeout_reason(seconds: float) -> str:
    return f"rendering took longer than the {seconds:g} s limit (WINWIN_RENDER_TIMEOUT_SECONDS)"


def write_frame(fd: int, obj: Any, wait: Any = None) -> None:
    """Write ``obj`` as one frame. With ``wait`` (for a non-blocking ``fd``), ``wait()`` is
    called before each write, and may raise to give up."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        if wait is not None:
            wait()
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            continue


def read_frame(fd: int, wait: Any = None) -> Any:
    """The next frame's object; None at end of file. ``wait()`` (if given) is called
    before each read that would block, and may raise to give up."""
    header = _read(fd, _HEADER.size, wait)
    if header is None:
        return None
    body = _read(fd, _HEADER.unpack(header)[0], wait)
    if body is None:
        return None
    return pickle.loads(body)  # noqa: S301 - our own processes, over our own pipes


def _read(fd: int, n: int, wait: Any) -> bytes | None:
    chunks, left = [], n
    while left:
        if wait is not None:
            wait()
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def render_one(
    renderer: TemplateRenderer,
    parts: tuple[str | None, str | None, str],
    context: dict[str, Any],
    tracked: bool,
    seconds: float,
    max_bytes: int,
) -> tuple[Any, ...]:
    """``("ok", subject, html, text, tracked_urls)`` or ``("problem", reason)``."""
    urls: dict[str, int] = {}

    def track(url: str) -> str:
        if not isinstance(url, str):
            raise ValueError(f"track() needs an absolute http(s) URL, got {url!r}")
        return PLACEHOLDER.format(urls.setdefault(url, len(urls)))

    if tracked:
        context["track"] = track
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        out = renderer.render(*parts, context, max_bytes=max_bytes)
        signal.setitimer(signal.ITIMER_REAL, 0)
        return ("ok", out.subject, out.html, out.text, list(urls))
    except TemplateProblem as problem:
        return ("problem", problem.reason)
    except _Timeout:
        return ("problem", timeout_reason(seconds))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def run_job(renderer: TemplateRenderer, job: dict[str, Any], out: int) -> None:
    """Render ``job["items"]`` (``(index, parts, context, tracked)``), writing results as
    they come (a frame at least every FLUSH_SECONDS, or after each item if ``flush_each``)."""
    seconds, max_bytes, each = job["seconds"], job["max_bytes"], job["flush_each"]
    slow: Counter[tuple[Any, ...]] = Counter()
    done: list[tuple[int, tuple[Any, ...]]] = []
    last = time.monotonic()
    for index, parts, context, tracked in job["items"]:
        if slow[parts] >= STRIKES:
            result: tuple[Any, ...] = ("problem", _skipped(seconds))
        else:
            try:
                result = render_one(renderer, parts, context, tracked, seconds, max_bytes)
            except _Timeout:  # the alarm rang just as the render ended
                result = ("problem", timeout_reason(seconds))
            timed_out = result[0] == "problem" and result[1] == timeout_reason(seconds)
            slow[parts] = slow[parts] + 1 if timed_out else 0  # strikes in a row
        done.append((index, result))
        if each or time.monotonic() - last >= FLUSH_SECONDS:
            write_frame(out, (False, done))
            done, last = [], time.monotonic()
    write_frame(out, (True, done))


def _skipped(seconds: float) -> str:
    return (
        f"not rendered: this template took longer than the {seconds:g} s limit "
        f"(WINWIN_RENDER_TIMEOUT_SECONDS) for {STRIKES} recipients in a row of this batch"
    )


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout


def main(argv: list[str]) -> int:
    memory = int(argv[0])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us
    signal.signal(signal.SIGALRM, _alarm)
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    out = os.dup(1)
    os.dup2(2, 1)  # nothing but frames on the protocol pipe
    renderer = TemplateRenderer()
    write_frame(out, "ready")
    while (job := read_frame(0)) is not None:
        try:
            run_job(renderer, job, out)
        except BrokenPipeError:
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
