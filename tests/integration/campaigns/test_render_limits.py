"""Render limits: what the sandbox refuses at once, and what the render pool bounds (time,
output size, a worker that stops answering), with ``track()`` working across processes."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from services.campaigns import render_pool
from services.campaigns.render_pool import BoundedRenderer, shared_pool
from services.campaigns.rendering import TemplateProblem, TemplateRenderer, sample_context

#: Each builds megabytes to gigabytes from a few characters; refused before it runs.
AMPLIFIERS = [
    "{{ ((((10**64)**64)**64)**64) > 1 }}",
    "{% set n = (10**64)**64 %}{{ n * n * n * n * n * n * n * n }}",
    "{{ 'x'|center(10**7) }}",
    "{{ '%99999999s' % 1 }}",
    "{{ '%*s' % (99999999, 1) }}",
    "{{ '%.99999999f'|format(1) }}",
    "{{ ('x' * 100000)|replace('x', 'x' * 1000) }}",
    "{{ ('x' * 1000)|replace('', 'y' * 10000) }}",
    "{{ (['x'] * 100000)|join('y' * 100) }}",
    "{{ ('x\n' * 50000)|indent(100) }}",
    "{{ ('x ' * 50000)|wordwrap(1, wrapstring='y' * 100) }}",
    "{% set s = 'x' * 100000 %}{{ s + s + s + s + s + s + s + s + s + s + s }}",
]
SLOW = (
    "{% if contact.attributes.slow is defined %}"
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    "{% endif %}ok {{ contact.name }}"
)


def person(name: str, **attributes: Any) -> dict[str, Any]:
    context = sample_context()
    context["contact"] = {"name": name, "first_name": name, "language": "en"} | {
        "attributes": attributes
    }
    return context


@pytest.mark.parametrize("payload", AMPLIFIERS)
def test_amplifiers_are_refused_at_once_in_process(payload: str) -> None:
    with pytest.raises(TemplateProblem, match="would build"):
        TemplateRenderer().check(None, None, payload)


def test_an_output_over_the_limit_fails_that_render_only() -> None:
    renderer = BoundedRenderer(seconds=5, max_bytes=10_000)
    big = "{% for i in range(contact.attributes.n) %}{{ 'ü' * 100 }}{% endfor %}"
    out = renderer.render_many(
        [((None, None, big), person("a", n=20)), ((None, big, "x"), person("b", n=200))]
    )
    assert out[0].text == "ü" * 2000  # type: ignore[union-attr]
    assert isinstance(out[1], TemplateProblem)
    assert (
        out[1].reason == "html: the message is over the 10,000-byte limit (WINWIN_RENDER_MAX_BYTES)"
    )
    with pytest.raises(TemplateProblem, match="10,000-byte limit"):  # bytes, not characters
        renderer.render(None, None, "{{ 'ü' * 6000 }}", person("c"))


def test_a_slow_render_fails_alone_and_a_slow_template_is_skipped_after_three_in_a_row() -> None:
    renderer = BoundedRenderer(seconds=1.0)
    names = ["a", "slow1", "b", "slow2", "slow3", "slow4", "slow5", "c"]
    items = [
        ((None, None, SLOW), person(n, slow=1) if n.startswith("slow") else person(n))
        for n in names
    ]
    out = [
        o.reason if isinstance(o, TemplateProblem) else o.text for o in renderer.render_many(items)
    ]
    limit = "rendering took longer than the 1 s limit (WINWIN_RENDER_TIMEOUT_SECONDS)"
    skipped = (
        "not rendered: this template took longer than the 1 s limit "
        "(WINWIN_RENDER_TIMEOUT_SECONDS) for 3 recipients in a row of this batch"
    )
    assert out == ["ok a", limit, "ok b", limit, limit, limit, skipped, skipped]


def test_track_gives_the_callers_links_exactly_as_in_process() -> None:
    calls: list[str] = []

    def track(url: str) -> str:
        calls.append(url)
        return f"https://t.example/r/{url[-1]}?a=1&b='2'"

    subject = "{{ track('https://x.example/s') }} news"
    html = "<a href=\"{{ track('https://x.example/a') }}\">{{ track('https://x.example/s') }}</a>"
    text = "{{ track('https://x.example/a') }} {{ track('https://x.example/b') }}"
    pooled = BoundedRenderer().render(subject, html, text, person("a") | {"track": track})
    first, calls[:] = calls[:], []
    local = TemplateRenderer().render(subject, html, text, person("a") | {"track": track})
    assert first == ["https://x.example/s", "https://x.example/a", "https://x.example/b"]
    assert calls == ["https://x.example/s", "https://x.example/a", "https://x.example/s"] + [
        "https://x.example/a",
        "https://x.example/b",
    ]
    assert pooled == local and "&amp;b=&#39;2&#39;" in (pooled.html or "")


def test_a_refused_track_names_the_part() -> None:
    def track(url: str) -> str:
        raise ValueError(f"not allowed: {url}")

    with pytest.raises(
        TemplateProblem, match=r"^html: ValueError: not allowed: https://x\.example"
    ):
        BoundedRenderer().render(
            "s", "<p>{{ track('https://x.example') }}</p>", "t", person("a") | {"track": track}
        )


def test_a_worker_that_stops_answering_is_killed_and_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A pool of its own: the process's shared pool is sized by its first user (2 workers
    # in a whole run), and freezing both would freeze the retry's worker too.
    monkeypatch.setattr(render_pool, "_POOL", None)
    renderer = BoundedRenderer(seconds=2.0, workers=1)  # roomy: a loaded CI machine
    assert renderer.render(None, None, "{{ contact.name }}", person("a")).text == "a"
    pool = shared_pool(1)
    pids = [w.proc.pid for w in pool._idle]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)  # what a C call no alarm interrupts looks like
    assert renderer.render(None, None, "{{ contact.name }}", person("b")).text == "b"
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # killed and reaped
    assert all(w.proc.pid not in pids for w in pool._idle)
