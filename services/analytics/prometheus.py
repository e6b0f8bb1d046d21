"""Process-wide counters and gauges in the Prometheus text format (``GET /metrics``).

A tiny registry, no client library: ``counter(name, help).inc()`` anywhere, and
``exposition()`` renders every metric. Declaring a name twice returns the same metric.
"""

from __future__ import annotations

import threading

__all__ = ["Metric", "counter", "exposition", "gauge"]

_lock = threading.Lock()
_registry: dict[str, Metric] = {}

Labels = tuple[tuple[str, str], ...]


class Metric:
    """One counter or gauge; values per label set (``inc(kind="open")``)."""

    def __init__(self, name: str, help_text: str, kind: str):
        self.name, self.help, self.kind = name, help_text, kind
        self._values: dict[Labels, float] = {(): 0.0}

    def inc(self, n: float = 1.0, **labels: str) -> None:
        if self.kind == "counter" and n < 0:
            raise ValueError("a counter only goes up")
        key = tuple(sorted(labels.items()))
        with _lock:
            self._values[key] = self._values.get(key, 0.0) + n

    def set(self, value: float, **labels: str) -> None:
        if self.kind != "gauge":
            raise TypeError(f"{self.name} is a counter: use inc()")
        with _lock:
            self._values[tuple(sorted(labels.items()))] = float(value)

    def mirror(self, total: float, **labels: str) -> None:
        """Show a total counted elsewhere (another process, SQL) as this metric's value."""
        with _lock:
            self._values[tuple(sorted(labels.items()))] = float(total)

    def value(self, **labels: str) -> float:
        return self._values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        with _lock:
            items = sorted(self._values.items())
        for labels, value in items:
            if labels or value or len(items) == 1:  # hide the idle unlabelled 0
                lines.append(f"{self.name}{_labels(labels)} {value:g}")
        return lines


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    escaped = (v.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n") for _, v in labels)
    return "{" + ",".join(f'{k}="{v}"' for (k, _), v in zip(labels, escaped, strict=True)) + "}"


def _declare(name: str, help_text: str, kind: str) -> Metric:
    with _lock:
        metric = _registry.setdefault(name, Metric(name, help_text, kind))
    if metric.kind != kind:
        raise ValueError(f"{name} is already a {metric.kind}")
    return metric


def counter(name: str, help_text: str = "") -> Metric:
    return _declare(name, help_text or name, "counter")


def gauge(name: str, help_text: str = "") -> Metric:
    return _declare(name, help_text or name, "gauge")


def exposition() -> str:
    """Every metric in the text exposition format (version 0.0.4)."""
    with _lock:
        metrics = sorted(_registry.values(), key=lambda m: m.name)
    return "\n".join(line for m in metrics for line in m.render()) + "\n"


EVENTS_ACCEPTED = counter("winwin_events_accepted_total", "Engagement events accepted.")
EVENTS_DUPLICATE = counter("winwin_events_duplicate_total", "Events refused as duplicates.")
EVENTS_REJECTED = counter("winwin_events_rejected_total", "Events rejected as invalid.")
CLICKS = counter("winwin_clicks_total", "Tracked-link redirects served.")
WEBHOOK_FAILURES = counter(
    "winwin_webhook_verification_failures_total", "SendGrid webhooks with a bad signature."
)
